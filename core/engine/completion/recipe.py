"""Domain adaptation on documents: continued training of a chat model on a domain's text, LoRA, QLoRA or full.

The sections the data step kept are joined back into stretches of text, each closed with the end-of-text
token, and cut into blocks of ``max_length`` tokens (``core.data.blocks.pack``: the very blocks the data summary
counted). Every token is a target, so the loss is plain next-token prediction; it runs through the chat
recipe's trainer (answer-token loss with every position an answer, atomic checkpoints, the token counter).

The evaluation is perplexity on the held-out blocks, base against tuned, the general-knowledge probe (continued
training on plain text is where a chat model most easily forgets how to chat) and a few held-out passages
continued by both models. The saved model is a chat model as before: the playground, the exports and a later
chat-tuning run (with the merged export as its model) take it as they take any other.
"""
from __future__ import annotations

from typing import Any

from transformers import TrainingArguments
from transformers.trainer_callback import PrinterCallback

from ...data.blocks import pack
from ...data.corpus import stretches
from ...strategies import apply_strategy, trainable_parameters
from .. import lm
from ..callbacks import ItemCounter, ReporterCallback
from ..chat import probe
from ..chat.collate import PaddedCollator, TokenRows
from ..chat.loss import ChatTrainer, answer_loss
from ..context import TrainContext, TrainOutcome

EVAL_BLOCKS_DURING_TRAINING = 32
EVAL_BLOCKS_FINAL = 256
CONTINUATIONS = 3
PROMPT_TOKENS = 64  # a held-out passage's opening the models continue
CONTINUATION_TOKENS = 48


class CompletionRecipe:
    """setup -> train -> save -> evaluate -> cleanup for a documents job (or load_trained -> evaluate).

    Args:
        ctx: the job, its data (``text``/``document``/``start`` sections), its model, run folder and reporter.
    """

    def __init__(self, ctx: TrainContext):
        self.ctx = ctx
        self.tokenizer = None
        self.model = None
        self.trainer = None
        self.train_rows: TokenRows | None = None
        self.val_rows: TokenRows | None = None

    # --- setup -------------------------------------------------------------------------------------
    def setup(self) -> None:
        """Load the tokenizer and model, wrap it for the strategy, and cut both splits into blocks."""
        lm.set_threads(self.ctx)
        cfg = self.ctx.config
        self.tokenizer = lm.load_tokenizer(self.ctx)
        self.ctx.reporter.phase("loading", f"Loading {cfg.model} for {cfg.strategy} training")
        model = apply_strategy(cfg.strategy, lm.load_base(self.ctx), cfg.task, cfg.train)
        model.config.use_cache = False
        trainable, total = trainable_parameters(model)
        self.ctx.reporter.line(f"Training {trainable:,} of {total:,} parameters ({cfg.strategy}).")
        self.model = model
        self.ctx.reporter.phase("tokenizing", "Cutting the documents into training blocks")
        self.train_rows = self._blocks(self.ctx.data.train)
        if not len(self.train_rows):
            raise ValueError("The documents make no training block: add text, or lower train.max_length.")
        self.val_rows = self._blocks(getattr(self.ctx.data, "validation", None))
        held = len(self.val_rows) if self.val_rows is not None else 0
        self.ctx.reporter.line(f"{len(self.train_rows)} training blocks and {held} held-out blocks of "
                               f"{self._length()} tokens.")

    def _length(self) -> int:
        return self.ctx.config.train.max_length or 256

    def _blocks(self, sections) -> TokenRows | None:
        """Token blocks of a split's sections; labels are the tokens themselves (every position is a target)."""
        if sections is None or not len(sections):
            return None
        packed = pack(self.tokenizer, stretches(sections.to_pandas()), self._length())
        return TokenRows([{"input_ids": b, "labels": list(b)} for b in packed.blocks])

    # --- train -------------------------------------------------------------------------------------
    def train(self) -> TrainOutcome:
        """Train with the transformers Trainer; stops within one step when ``ctx.stop`` is set."""
        ctx, t = self.ctx, self.ctx.config.train
        counter = ItemCounter()
        callback = ReporterCallback(ctx.reporter, ctx.stop, counter, unit="tokens",
                                    max_seconds=t.max_minutes * 60 if t.max_minutes else None)
        evaluating = self.val_rows is not None
        eval_rows = TokenRows(self.val_rows.rows[:EVAL_BLOCKS_DURING_TRAINING]) if evaluating else None
        self.trainer = ChatTrainer(
            model=self.model, args=self._arguments(evaluating), train_dataset=self.train_rows,
            eval_dataset=eval_rows, data_collator=PaddedCollator(self.tokenizer.pad_token_id),
            processing_class=self.tokenizer, callbacks=[callback], counter=counter)
        self.trainer.remove_callback(PrinterCallback)  # the reporter logs; the printer would spam stdout
        ctx.reporter.phase("training", f"Training on {len(self.train_rows)} blocks")
        result = self.trainer.train(resume_from_checkpoint=str(ctx.resume_from) if ctx.resume_from else None)
        return TrainOutcome(stopped=callback.stopped_early, global_step=self.trainer.state.global_step,
                            train_loss=result.training_loss, extra={"tokens": counter.total})

    def _arguments(self, evaluating: bool) -> TrainingArguments:
        return TrainingArguments(**lm.trainer_fields(self.ctx, evaluating, learning_rate=1e-3),
                                 remove_unused_columns=False, label_names=["shift_labels"])

    # --- save / load -------------------------------------------------------------------------------
    def save(self) -> None:
        """Write the adapter (or the whole model, safetensors) and the tokenizer to ``run/model``."""
        lm.save(self)

    def load_trained(self) -> None:
        """Load this run's saved model and cut the held-out documents into blocks (instead of setup + train)."""
        lm.set_threads(self.ctx)
        self.tokenizer = lm.load_tokenizer(self.ctx)
        self.ctx.reporter.phase("loading", f"Loading the trained model from {self.ctx.run.model}")
        self.model = lm.load_trained(self.ctx)
        self.val_rows = self._blocks(getattr(self.ctx.data, "validation", None))

    # --- evaluate ----------------------------------------------------------------------------------
    def evaluate(self) -> dict[str, Any]:
        """eval.json: perplexity of the base and the tuned model on the held-out blocks, the general-knowledge
        probe, and a few held-out passages continued by both."""
        if self.val_rows is None:
            return {"task": "text-completion", "split": "validation", "blocks": 0,
                    "message": "There is no held-out text, so nothing was compared."}
        self.ctx.reporter.phase("evaluating", "Measuring perplexity on the held-out blocks, base and tuned")
        rows = self.val_rows.rows[:EVAL_BLOCKS_FINAL]
        collate = PaddedCollator(self.tokenizer.pad_token_id)
        batch = self.ctx.config.train.batch_size or 4
        batches = [collate(rows[i:i + batch]) for i in range(0, len(rows), batch)]
        passages = [r["input_ids"] for r in rows if len(r["input_ids"]) >= 16][:CONTINUATIONS]
        model = self.trainer.accelerator.unwrap_model(self.model) if self.trainer else self.model
        model.eval()
        tuned = self._score(model, batches, passages)
        with lm.base_of(self.ctx, model) as base_model:
            base = self._score(base_model, batches, passages)
        return self._report(rows, base, tuned, passages)

    def _score(self, model, batches, passages) -> dict[str, Any]:
        loss = answer_loss(model, batches)
        texts = [self.tokenizer.decode(p[:_cut(p)]) for p in passages]
        return {"loss": loss, "continuations": [lm.continuation(model, self.tokenizer, text, CONTINUATION_TOKENS)
                                                 for text in texts],
                "probe": probe.score(model, self.tokenizer)}

    def _report(self, rows, base, tuned, passages) -> dict[str, Any]:
        b, t = base["loss"], tuned["loss"]
        decode = self.tokenizer.decode
        return {
            "task": "text-completion", "split": "validation", "blocks": len(rows), "rows": len(rows),
            "block_length": self._length(), "tokens": t["tokens"],
            "base": {"eval_loss": b["loss"], "perplexity": b["perplexity"]},
            "tuned": {"eval_loss": t["loss"], "perplexity": t["perplexity"]},
            "change": {"eval_loss": lm.relative(t["loss"], b["loss"]),
                       "perplexity": lm.relative(t["perplexity"], b["perplexity"])},
            "examples": [{"prompt": decode(p[:_cut(p)]), "reference": decode(p[_cut(p):_cut(p) + CONTINUATION_TOKENS]),
                          "base": bc, "tuned": tc}
                         for p, bc, tc in zip(passages, base["continuations"], tuned["continuations"])],
            "probe": probe.compare(base["probe"], tuned["probe"]),
            "next_step": "To teach it to answer questions about this domain, start a chat run with this run's "
                         "merged export as the model (studio export RUN --merged FOLDER, then model: FOLDER).",
        }

    # --- cleanup -----------------------------------------------------------------------------------
    def cleanup(self) -> None:
        """Drop the model, trainer and data so repeated jobs in one process do not grow memory."""
        lm.free(self)


def _cut(ids: list[int]) -> int:
    """Where a held-out passage's opening ends: PROMPT_TOKENS, or half of a shorter block."""
    return min(PROMPT_TOKENS, len(ids) // 2)
