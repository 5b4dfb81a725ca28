"""Training on several GPUs: the accelerate config the studio writes next to a run's config, and the launch line.

``studio train CONFIG --gpus N`` writes the accelerate config into the studio home (``launch/``), prints and
runs ``accelerate launch --config_file THAT -m core.cli train CONFIG``: every process runs the same job, the runner
shares one run folder between them and only rank 0 writes it; the accelerate config is then copied into the run
folder as ``accelerate.yaml``, beside the run's config.yaml, so the run folder holds all it takes to rerun it.

What the config says comes from the memory estimate: when the job fits on one GPU, each GPU holds a whole copy
and gradients are averaged (DDP, the fastest); when it does not, parameters, gradients and optimiser state are
sharded over the GPUs with FSDP (the recipe the peft and bitsandbytes guides give for LoRA and QLoRA: transformer
layers wrapped one by one, ``use_orig_params`` off, the weights loaded on rank 0 only; QLoRA's 4-bit weights are
stored in bf16 so FSDP can shard them). On a machine without a GPU the same line starts N CPU processes that talk
over gloo (how the tests check it); that is for testing, not for speed.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from .config import JobConfig
from .hardware import Hardware
from .memory import ModelShape, estimate_memory
from .strategies import get_strategy

ACCELERATE_FILE = "accelerate.yaml"


@dataclass(frozen=True)
class ScaleOut:
    """How a job runs on several devices.

    Args:
        processes: how many processes (one per GPU).
        sharded: FSDP (parameters sharded) rather than DDP (a copy on each GPU).
        reason: one sentence: why this layout.
        on_cpu: no GPU here: the processes run on the CPU over gloo (for testing).
    """

    processes: int
    sharded: bool
    reason: str
    on_cpu: bool = False


def plan_scale_out(config: JobConfig, gpus: int, hardware: Hardware, shape: ModelShape) -> ScaleOut:
    """DDP when the job fits on one GPU as it is, FSDP when it needs the GPUs' memory together (rather than
    gradient checkpointing or 8-bit optimiser states on one).

    Args:
        config: the job (filled presets give the batch size and length; empty ones take 4 and 512).
        gpus: how many processes to start.
        hardware: this machine (its GPU memory is one GPU's).
        shape: the model's size and shape (``ModelShape``).
    """
    if gpus < 1:
        raise ValueError(f"--gpus {gpus}: give 1 or more.")
    on_cpu = hardware.device != "cuda"
    t = config.train
    one = estimate_memory(shape, config.strategy, config.task, t.batch_size or 4, t.max_length or 512, hardware,
                          t.gradient_checkpointing, hardware.bf16 and not on_cpu)
    plain = one.fits and not one.gradient_checkpointing and one.optimizer == "adamw_torch"
    if gpus == 1 or plain or on_cpu:
        reason = (f"{gpus} CPU processes over gloo (no GPU here: for testing)" if on_cpu else
                  f"fits on one GPU ({one.total_gb:.1f} of {one.available_gb:.0f} GB): a copy on each, DDP")
        return ScaleOut(gpus, sharded=False, reason=reason, on_cpu=on_cpu)
    return ScaleOut(gpus, sharded=True, on_cpu=False,
                    reason=f"needs {one.total_gb:.1f} GB, more than one GPU's {one.available_gb:.0f} GB: FSDP shards "
                           f"it over {gpus} GPUs")


def accelerate_config(plan: ScaleOut, config: JobConfig, layer_class: str | None = None,
                      bf16: bool = True) -> dict:
    """The accelerate config (as ``accelerate config`` would write it) for ``plan``.

    Args:
        plan: from ``plan_scale_out``.
        config: the job (QLoRA changes how FSDP treats the 4-bit weights).
        layer_class: the model's decoder layer class name (``LlamaDecoderLayer``), what FSDP wraps one by one;
            None lets accelerate use the model's ``_no_split_modules``.
        bf16: mixed precision in bf16 (a GPU that has it).
    """
    out = {
        "compute_environment": "LOCAL_MACHINE",
        "debug": False,
        # accelerate 1.15 starts one process for a CPU config, so a CPU test runs the multi-GPU launcher (torchrun)
        # and the studio's runner sets up gloo when it finds no GPU.
        "distributed_type": "FSDP" if plan.sharded else "MULTI_GPU",
        "downcast_bf16": "no",
        "machine_rank": 0,
        "main_training_function": "main",
        "mixed_precision": "bf16" if bf16 and not plan.on_cpu else "no",
        "num_machines": 1,
        "num_processes": plan.processes,
        "rdzv_backend": "static",
        "same_network": True,
        "use_cpu": False,
        "dynamo_config": {"dynamo_backend": "NO"},  # the recipe compiles what pays itself
    }
    if plan.sharded:
        out["fsdp_config"] = fsdp_settings(config, layer_class)
    return out


def fsdp_settings(config: JobConfig, layer_class: str | None) -> dict:
    """FSDP settings for a job: layer-by-layer wrapping, full sharding, weights loaded once on rank 0."""
    strategy = get_strategy(config.strategy)
    settings = {
        "fsdp_version": 1,  # peft's and bitsandbytes' FSDP guides (QLoRA included) are written for FSDP1
        "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
        "fsdp_backward_prefetch": "BACKWARD_PRE",
        "fsdp_cpu_ram_efficient_loading": True,
        "fsdp_forward_prefetch": False,
        # QLoRA: 4-bit weights kept on the CPU between uses (the guides' 70B-on-2x24GB recipe)
        "fsdp_offload_params": strategy.quantised,
        "fsdp_sharding_strategy": "FULL_SHARD",
        "fsdp_state_dict_type": "SHARDED_STATE_DICT",
        "fsdp_sync_module_states": True,
        # adapters: frozen and trained weights are wrapped apart, which needs use_orig_params off to save memory
        "fsdp_use_orig_params": not strategy.adapter,
        "fsdp_activation_checkpointing": bool(config.train.gradient_checkpointing),
    }
    if layer_class:
        settings["fsdp_transformer_layer_cls_to_wrap"] = layer_class
    return settings


def write_accelerate_config(path: Path, settings: dict) -> Path:
    """Write ``settings`` as an accelerate config file at ``path``; returns the path."""
    path = Path(path)
    path.write_text(yaml.safe_dump(settings, sort_keys=True), encoding="utf-8")
    return path


def launch_command(config_path: Path, accelerate_path: Path, home: Path | None = None,
                   overrides: list[str] = (), port: int | None = None) -> list[str]:
    """The ``accelerate launch`` line that trains ``config_path`` with ``accelerate_path``'s layout.

    Args:
        config_path: the job's config.yaml.
        accelerate_path: the config ``write_accelerate_config`` wrote.
        home: the studio home (each process must use the same).
        overrides: ``--set KEY=VALUE`` settings passed on.
        port: the rendezvous port (default: accelerate's).
    """
    line = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(accelerate_path)]
    if port:
        line += ["--main_process_port", str(port)]
    line += ["-m", "core.cli", "train", str(config_path)]
    for item in overrides:
        line += ["--set", item]
    if home is not None:
        line += ["--home", str(home)]
    return line


def decoder_layer_class(model_path: Path) -> str | None:
    """The class names of a transformers causal LM's repeated blocks (what FSDP wraps), read from its config
    without loading it; None when unknown (accelerate then uses the model's ``_no_split_modules`` itself)."""
    try:
        from transformers import AutoConfig
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

        model_class = MODEL_FOR_CAUSAL_LM_MAPPING[type(AutoConfig.from_pretrained(model_path))]
    except Exception:  # remote code or an unknown architecture
        return None
    names = getattr(model_class, "_no_split_modules", None) or []
    return ",".join(names) or None


def prepare_launch(config, config_path: Path, gpus: int, home, hardware: Hardware, overrides: list[str] = (),
                   port: int | None = None) -> tuple[list[str], ScaleOut, Path]:
    """Plan a multi-process run of ``config``, write its accelerate config into the studio home, and return the
    launch line, the plan and the accelerate config's path.

    The model is resolved here once (a first download happens before the processes start, not in each of them).

    Args:
        config: the job (``JobConfig``) as the file and ``--set`` give it.
        config_path: the file it came from (the processes read it again, with the same ``--set``).
        gpus: how many processes.
        home: the studio ``Home``.
        hardware: this machine.
        overrides: the ``--set KEY=VALUE`` settings.
        port: the rendezvous port (None: accelerate's default).
    """
    from .memory import model_shape
    from .models import resolve_model

    resolved = resolve_model(config.model, home, task=config.task)
    plan = plan_scale_out(config, gpus, hardware, model_shape(resolved))
    layer = decoder_layer_class(resolved.path) if plan.sharded else None
    settings = accelerate_config(plan, config, layer, bf16=hardware.bf16)
    folder = Path(home.root) / "launch"
    folder.mkdir(parents=True, exist_ok=True)
    path = write_accelerate_config(folder / f"{Path(config_path).stem}-{gpus}x.yaml", settings)
    return launch_command(Path(config_path).resolve(), path, home.root, overrides, port), plan, path


def run_launch(command: list[str], accelerate_path: Path, echo=print) -> tuple[int, Path | None]:
    """Run the launch line, echoing its output; on success copy the accelerate config into the run folder (the
    last line ``studio train`` prints), beside the run's config.yaml. Returns (exit code, run folder or None)."""
    import shutil
    import subprocess

    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    last = ""
    for line in proc.stdout:
        echo(line.rstrip("\n"))
        last = line.strip() or last
    code = proc.wait()
    run = Path(last) if code == 0 and last and Path(last).is_dir() else None
    if run is not None and (run / "config.yaml").is_file():
        shutil.copyfile(accelerate_path, run / ACCELERATE_FILE)
    return code, run
