"""Tiny offline stand-ins for the chat tests: a byte-level BPE tokenizer with a ChatML template, a 2-layer
Llama and a conversation dataset; plus a check that they behave like the real thing."""
from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import torch

CHATML = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

COLOURS = ["red", "blue", "green", "yellow", "black", "white", "orange", "purple"]
THINGS = ["apple", "sky", "grass", "banana", "coal", "snow", "carrot", "plum"]


def conversations(n: int = 48, seed: int = 0) -> list[list[dict]]:
    """Question/answer pairs with a learnable pattern (thing -> colour), some with a system turn."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for i in range(n):
        k = int(torch.randint(len(THINGS), (1,), generator=g))
        messages = [{"role": "user", "content": f"What colour is the {THINGS[k]}?"},
                    {"role": "assistant", "content": f"The {THINGS[k]} is {COLOURS[k]}."}]
        if i % 3 == 0:
            messages.insert(0, {"role": "system", "content": "Answer briefly."})
        if i % 5 == 0:
            messages += [{"role": "user", "content": "Are you sure?"},
                         {"role": "assistant", "content": f"Yes, {COLOURS[k]}."}]
        rows.append(messages)
    return rows


def save_tiny_tokenizer(folder: Path):
    """Train a byte-level BPE on the test sentences and save it with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    corpus = [m["content"] for conv in conversations(64) for m in conv] + ["system user assistant\n"]
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", unk_token="<|endoftext|>")
    fast.chat_template = CHATML
    fast.save_pretrained(folder)
    return fast


def save_tiny_llama(folder: Path, vocab_size: int, seed: int = 0) -> Path:
    """A 2-layer, width-64 Llama saved as safetensors."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def tiny_model_folder(root: Path) -> Path:
    """Tokenizer + model in one folder (what core.models resolves a local folder to)."""
    folder = root / "tiny-llama"
    if not (folder / "config.json").is_file():
        tok = save_tiny_tokenizer(folder)
        save_tiny_llama(folder, len(tok))
    return folder


def resolved(folder: Path):
    """The ResolvedModel of the tiny local folder."""
    from core.models import ResolvedModel

    return ResolvedModel(name=str(folder), path=folder, source="local", kind="transformers", entry=None,
                         model_type="llama")


def prepared(n_train: int = 48, n_val: int = 12):
    """A PreparedData-shaped object with ``messages`` datasets."""
    from datasets import Dataset

    rows = conversations(n_train + n_val)
    train = Dataset.from_dict({"messages": rows[:n_train]})
    validation = Dataset.from_dict({"messages": rows[n_train:]})
    return SimpleNamespace(task="chat", train=train, validation=validation, labels=None, summary={})


def context(tmp: Path, strategy: str = "lora", stop: threading.Event | None = None, **train):
    """A TrainContext for a chat job on the tiny model."""
    from core.config import DataConfig, JobConfig, TrainConfig
    from core.engine.context import TrainContext
    from core.engine.events import ListSink, Reporter
    from core.runs import RunDir
    from core.hardware import detect_hardware
    from core.home import Home

    folder = tiny_model_folder(tmp)
    settings = dict(epochs=3.0, learning_rate=3e-3, batch_size=4, grad_accum=1, max_length=96, lora_r=8,
                    lora_alpha=16, eval_every=4, save_every=6, threads=1, lora_dropout=0.0, warmup_ratio=0.0,
                    precision="fp32", replay=0.0)  # the same on every machine; bf16 and replay have their own tests
    settings.update(train)
    config = JobConfig(task="chat", model=str(folder), strategy=strategy, data=DataConfig(path="chat.jsonl"),
                       train=TrainConfig(**settings))
    home = Home.resolve(tmp / "home")
    run = RunDir.create(home.runs, "tiny", "chat")
    config.save(run.config)
    sink = ListSink()
    ctx = TrainContext(config=config, home=home, run=run, data=prepared(), model=resolved(folder),
                       reporter=Reporter(run.metrics, [sink]), stop=stop or threading.Event(),
                       hardware=detect_hardware())
    return ctx, sink


def test_tiny_tokenizer_round_trips_chat_text(tmp_path):
    tok = save_tiny_tokenizer(tmp_path)
    text = tok.apply_chat_template(conversations(1)[0], tokenize=False)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    assert tok.convert_tokens_to_ids("<|im_end|>") == tok.eos_token_id
