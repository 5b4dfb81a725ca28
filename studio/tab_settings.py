"""Step 3, strategy and settings: QLoRA / LoRA / head-only / full with one sentence each, a preset, and an
advanced accordion of typed fields. A panel shows the YAML and the ``studio train`` command of the job, and
the memory estimate for this machine (also shown on the model step).
"""
from __future__ import annotations

import gradio as gr

from core.config import ConfigError, JobConfig
from core.memory import ModelShape, estimate_memory
from core.presets import bf16_weights, fill_presets
from core.strategies import get_strategy, strategies_for

from . import tab_model
from .context import Studio
from .form import ADVANCED, SWITCHES, build_config, command_for
from .views import notice

PRESET_CHOICES = [("Quick: a first look in minutes", "quick"), ("Balanced", "balanced"),
                  ("Thorough: the final model", "thorough")]
FIELDS = {  # name -> (label, precision, minimum, info)
    "epochs": ("Epochs", None, 0, "passes over the data"),
    "max_steps": ("Max steps", 0, 0, "stop after this many steps (overrides epochs)"),
    "learning_rate": ("Learning rate", None, 0, "e.g. 0.0002"),
    "batch_size": ("Batch size", 0, 0, "rows per step"),
    "grad_accum": ("Gradient accumulation", 0, 0, "steps summed before an update"),
    "max_length": ("Max length (tokens)", 0, 0, "longer rows are cut"),
    "lora_r": ("LoRA rank", 0, 0, "adapter size"),
    "lora_alpha": ("LoRA alpha", 0, 0, "adapter scale"),
    "eval_every": ("Evaluate every (steps)", 0, 0, ""),
    "seed": ("Seed", 0, 0, "same seed, same run"),
    "max_minutes": ("Time limit (minutes)", None, 0, "stop and keep the model after this"),
}
SWITCH_LABELS = {  # name -> (label, info)
    "precision": ("Precision", "automatic: bf16 for chat LoRA where the CPU or GPU multiplies bf16 natively, "
                  "else fp32"),
    "compile": ("Compile the model (torch.compile)", "automatic: on for chat runs of 300+ micro-batches on a CPU; "
                "costs about a minute once"),
}


def build(st: Studio) -> None:
    gr.Markdown("## How to train\nPick a strategy and a preset; the preset fills every setting from your data and "
                "this machine. Open *Advanced* only to override one.")
    empty = gr.HTML(notice("Load data and choose a model first.", "info"), elem_id="settings-empty")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            strategy = gr.Radio(label="Strategy", choices=[], elem_id="settings-strategy")
            strategy_help = gr.Markdown(elem_id="settings-strategy-help")
            preset = gr.Radio(PRESET_CHOICES, value="quick", label="Preset", elem_id="settings-preset")
            name = gr.Textbox(label="Run name (optional)", placeholder="e.g. support-bot-v1", elem_id="settings-name")
            with gr.Accordion("Advanced: override a setting (0 = the preset decides)", open=False,
                              elem_id="settings-advanced"):
                validation = gr.Slider(0, 0.5, value=0, step=0.05, label="Validation share (0 = automatic)",
                                       elem_id="settings-validation")
                advanced = []
                with gr.Row():
                    for i, key in enumerate(ADVANCED):
                        label, precision, minimum, info = FIELDS[key]
                        advanced.append(gr.Number(value=0, label=label, precision=precision, minimum=minimum,
                                                  info=info or None, elem_id=f"settings-{key}", min_width=150))
                with gr.Row():
                    for key, choices in SWITCHES.items():
                        label, info = SWITCH_LABELS[key]
                        advanced.append(gr.Dropdown(choices, value="auto", label=label, info=info,
                                                    elem_id=f"settings-{key}", min_width=240))
        with gr.Column(scale=2):
            memory = gr.HTML(elem_id="settings-memory")
            with gr.Accordion("Config and command (reproduce this job)", open=True):
                yaml_view = gr.Code(language="yaml", label="config.yaml", interactive=False, lines=14,
                                    elem_id="settings-yaml")
                command = gr.Code(language="shell", label="Command line", interactive=False, lines=1,
                                  elem_id="settings-command")
    next_button = gr.Button("Next: train →", variant="primary", elem_id="settings-next")
    next_button.click(lambda: gr.Tabs(selected="train"), None, st["tabs"])
    st.shared.update(settings_empty=empty, strategy=strategy, strategy_help=strategy_help, preset=preset,
                     run_name=name, validation=validation, advanced=advanced, settings_memory=memory,
                     settings_yaml=yaml_view, settings_command=command)


def job_inputs(st: Studio) -> list:
    """The components ``job_from_widgets`` reads, in its argument order."""
    s = st.shared
    return [s["data"], s["model_choice"], s["model_custom"], s["strategy"], s["preset"], s["run_name"],
            s["validation"], *s["advanced"]]


def job_from_widgets(st: Studio, data, choice, custom, strategy, preset, name, validation, *advanced) -> JobConfig:
    """The job the widgets describe; raises ConfigError when a step is missing."""
    if not data:
        raise ConfigError(["there is no data yet: load a file or an example in step 1 (fix any errors shown)."])
    model = tab_model.chosen_model(choice, custom, st.public)
    if not model:
        raise ConfigError(["no model is chosen: pick one in step 2."])
    return build_config(data["choice"], model, strategy or "", preset or "balanced", name, validation, *advanced)


def filled(st: Studio, config: JobConfig, data) -> JobConfig:
    """The job with the preset's values in place: what will actually run."""
    prepared = data["prepared"]
    summary = prepared.summary or {}
    n_train = (summary.get("rows") or {}).get("train") or (len(prepared.train) if prepared.train is not None else 0)
    return fill_presets(config, int(n_train), st.hardware, summary.get("token_lengths"))


def wire(st: Studio) -> None:
    """Connect the settings to the model and data steps (called once every tab exists)."""
    s = st.shared
    strategy_inputs = [s["data"], s["model_choice"], s["model_custom"], s["strategy"]]
    custom_blur = [s["model_custom"].blur] if isinstance(s["model_custom"], gr.Textbox) else []
    for trigger in [s["data"].change, s["model_choice"].change, *custom_blur]:
        trigger(lambda *a: _strategies(st, *a), strategy_inputs, [s["strategy"], s["settings_empty"]])
    s["strategy"].change(_strategy_help, [s["strategy"]], [s["strategy_help"]])
    outputs = [s["settings_yaml"], s["settings_command"], s["settings_memory"], s["model_memory"]]
    inputs = job_inputs(st)
    triggers = [s["strategy"].change, s["preset"].change, s["run_name"].blur, s["validation"].release,
                s["model_choice"].change, s["data"].change] + [
        n.change if isinstance(n, gr.Dropdown) else n.blur for n in s["advanced"]]
    for trigger in triggers:
        trigger(lambda *a: _panel(st, *a), inputs, outputs)


def _strategies(st: Studio, data, choice, custom, current):
    if not data:
        return gr.update(choices=[], value=None), gr.update(visible=True)
    task = data["choice"].task
    entry = tab_model.model_entry(tab_model.chosen_model(choice, custom, st.public))
    allowed = [k for k in strategies_for(task) if entry is None or k in entry.strategies]
    choices = [(get_strategy(k).title, k) for k in allowed]
    default = "head-only" if "head-only" in allowed else ("lora" if "lora" in allowed else allowed[0])
    value = current if current in allowed else default
    return gr.update(choices=choices, value=value), gr.update(visible=False)


def _strategy_help(key: str | None) -> str:
    if not key:
        return ""
    strategy = get_strategy(key)
    return f"**{strategy.title}** trains {strategy.trains}. {strategy.when}"


def _panel(st: Studio, *values):
    try:
        config = job_from_widgets(st, *values)
        job = filled(st, config, values[0])
    except ConfigError as exc:
        message = notice(" ".join(exc.problems), "info")
        return "", "", message, message
    problems = job.problems()
    yaml_text = job.to_yaml()
    memory = _memory_html(st, job)
    if problems:
        memory = notice(" ".join(problems), "error", "Fix these settings:") + memory
    return yaml_text, command_for("config.yaml"), memory, memory


def _memory_html(st: Studio, job: JobConfig) -> str:
    entry = tab_model.model_entry(job.model)
    if entry is None:
        return notice("No memory estimate for a typed model: its size is known once it is loaded.", "info")
    t = job.train
    estimate = estimate_memory(ModelShape.guess(entry.params_m), job.strategy, job.task, t.batch_size or 8,
                               t.max_length or 256, st.hardware, t.gradient_checkpointing,
                               bf16_weights(job, st.hardware))
    parts = ", ".join(f"{k} {v:.2f} GB" for k, v in estimate.breakdown.items())
    verdict = "fits" if estimate.fits else "does not fit"
    length = f", length {t.max_length}" if t.max_length else ""
    text = (f"{entry.title} with {get_strategy(job.strategy).title}, batch {t.batch_size}{length}: about "
            f"{estimate.total_gb:.1f} GB of {estimate.available_gb:.1f} GB available ({parts}). {estimate.advice}")
    return notice(text, "ok" if estimate.fits else "error", f"Memory: {verdict} on this machine.")

