"""Preference tuning: DPO or ORPO on chosen/rejected pairs, with LoRA (QLoRA where the strategy loads the base in
4 bits) through TRL's trainers, and a base-versus-tuned comparison on held-out pairs.

The evaluation scores every held-out pair with both models the same way (``scoring``): how often each prefers
the chosen answer, by how much, and DPO's reward of the tuned model against the base; then the general-knowledge
probe (did it forget?) and a few greedy answers side by side, as for chat.
"""
from __future__ import annotations

from typing import Any

from transformers.trainer_callback import PrinterCallback

from ...strategies import get_strategy, lora_config, trainable_parameters
from .. import lm
from ..callbacks import ItemCounter
from ..chat import probe
from ..context import TrainContext, TrainOutcome
from . import scoring
from .trainers import PreferenceReporter, make_trainer, quiet_maps, trl_pairs

EVAL_PAIRS_DURING_TRAINING = 32  # eval points on the curve stay cheap
EVAL_PAIRS_FINAL = 256
GENERATION_EXAMPLES = 4
GENERATION_TOKENS = 64
DEFAULT_BETA = 0.1  # TRL's default, for a config written before the studio filled beta


class PreferenceRecipe:
    """setup -> train -> save -> evaluate -> cleanup for a preference job (or load_trained -> evaluate).

    Args:
        ctx: the job, its data (``prompt``/``chosen``/``rejected`` datasets), its model, run folder and reporter.
    """

    def __init__(self, ctx: TrainContext):
        self.ctx = ctx
        self.strategy = get_strategy(ctx.config.strategy)
        self.tokenizer = None
        self.model = None
        self.peft_config = None
        self.trainer = None

    # --- setup -------------------------------------------------------------------------------------
    def setup(self) -> None:
        """Load the tokenizer and the base model, and describe the adapter TRL will wrap it in."""
        lm.set_threads(self.ctx)
        cfg = self.ctx.config
        self.tokenizer = lm.load_tokenizer(self.ctx)
        self.ctx.reporter.phase("loading", f"Loading {cfg.model} for {self.strategy.title} training")
        model = lm.load_base(self.ctx)
        model.config.use_cache = False
        if self.strategy.quantised:
            from peft import prepare_model_for_kbit_training
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.train.gradient_checkpointing)
        self.peft_config = lora_config(model, cfg.task, cfg.train) if self.strategy.adapter else None
        self.model = model

    # --- train -------------------------------------------------------------------------------------
    def train(self) -> TrainOutcome:
        """Train with TRL's trainer for the strategy's objective; stops within one step when ``ctx.stop`` is set."""
        ctx, t = self.ctx, self.ctx.config.train
        counter = ItemCounter()
        callback = PreferenceReporter(ctx.reporter, ctx.stop, counter, unit="tokens",
                                      max_seconds=t.max_minutes * 60 if t.max_minutes else None)
        objective = self.strategy.objective
        ctx.reporter.phase("tokenizing", f"Applying the chat template to {len(ctx.data.train)} pairs")
        with quiet_maps():
            train_pairs = trl_pairs(ctx.data.train, objective, self.tokenizer)
            eval_pairs = self._eval_pairs(objective)
            self.trainer = make_trainer(objective, self.model, self.tokenizer, self.peft_config, train_pairs,
                                        eval_pairs, self._arguments(eval_pairs is not None), t.beta or DEFAULT_BETA,
                                        t.max_length or 512, [callback], counter)
        self.trainer.remove_callback(PrinterCallback)  # the reporter logs; the printer would spam stdout
        self.model = self.trainer.model
        trainable, total = trainable_parameters(self.model)
        ctx.reporter.line(f"Training {trainable:,} of {total:,} parameters ({self.strategy.title}, beta "
                          f"{t.beta or DEFAULT_BETA:g}).")
        ctx.reporter.phase("training", f"Training on {len(train_pairs)} pairs")
        result = self.trainer.train(resume_from_checkpoint=str(ctx.resume_from) if ctx.resume_from else None)
        return TrainOutcome(stopped=callback.stopped_early, global_step=self.trainer.state.global_step,
                            train_loss=result.training_loss, extra={"tokens": counter.total})

    def _eval_pairs(self, objective: str):
        validation = getattr(self.ctx.data, "validation", None)
        if validation is None or not len(validation):
            return None
        return trl_pairs(validation.select(range(min(len(validation), EVAL_PAIRS_DURING_TRAINING))), objective,
                         self.tokenizer)

    def _arguments(self, evaluating: bool) -> dict[str, Any]:
        """The ``TrainingArguments`` fields of the TRL config: the shared ones, no fp16, checkpointing as set."""
        return {**lm.trainer_fields(self.ctx, evaluating, learning_rate=2e-4), "fp16": False,
                "activation_checkpointing": self.ctx.config.train.gradient_checkpointing}

    # --- save / load -------------------------------------------------------------------------------
    def save(self) -> None:
        """Write the adapter (or the whole model) and the tokenizer to ``run/model``."""
        lm.save(self)

    def load_trained(self) -> None:
        """Load the base model and this run's saved adapter (instead of setup + train)."""
        lm.set_threads(self.ctx)
        self.tokenizer = lm.load_tokenizer(self.ctx)
        self.ctx.reporter.phase("loading", f"Loading the trained model from {self.ctx.run.model}")
        self.model = lm.load_trained(self.ctx)

    # --- evaluate ----------------------------------------------------------------------------------
    def evaluate(self) -> dict[str, Any]:
        """eval.json: preference accuracy and margins of the base and the tuned model on held-out pairs, the
        general-knowledge probe, and a few answers side by side."""
        validation = getattr(self.ctx.data, "validation", None)
        if validation is None or not len(validation):
            return {"task": "preference", "split": "validation", "pairs": 0,
                    "message": "There is no validation split, so nothing was compared."}
        self.ctx.reporter.phase("evaluating", "Scoring held-out pairs with the base and the tuned model")
        # right after training the report stays quick (the first EVAL_PAIRS_FINAL pairs); ``studio eval`` of a
        # finished run (no trainer) scores every pair it is given, as its --data promises
        limit = EVAL_PAIRS_FINAL if self.trainer is not None else len(validation)
        pairs = validation.select(range(min(len(validation), limit)))
        rows = scoring.encode_pairs(self.tokenizer, pairs, self.ctx.config.train.max_length)
        examples = [pairs[i] for i in range(min(GENERATION_EXAMPLES, len(pairs)))]
        model = self.trainer.accelerator.unwrap_model(self.model) if self.trainer else self.model
        model.eval()
        tuned, tuned_answers, tuned_probe = self._score(model, rows, examples)
        with lm.base_of(self.ctx, model) as base_model:
            base, base_answers, base_probe = self._score(base_model, rows, examples)
        return self._report(pairs, base, tuned, examples, base_answers, tuned_answers, base_probe, tuned_probe)

    def _score(self, model, rows, examples):
        pad = self.tokenizer.pad_token_id
        logps = (scoring.answer_logps(model, rows[0], pad), scoring.answer_logps(model, rows[1], pad))
        answers = [lm.answer(model, self.tokenizer, list(e["prompt"]), GENERATION_TOKENS) for e in examples]
        return logps, answers, probe.score(model, self.tokenizer)

    def _report(self, pairs, base, tuned, examples, base_answers, tuned_answers, base_probe, tuned_probe):
        beta = self.ctx.config.train.beta or DEFAULT_BETA
        before, after = scoring.side_scores(*base), scoring.side_scores(*tuned)
        after.update(scoring.implicit_rewards(base, tuned, beta))
        return {
            "task": "preference", "split": "validation", "pairs": len(pairs), "rows": len(pairs),
            **({"pairs_held_out": len(self.ctx.data.validation)} if len(pairs) < len(self.ctx.data.validation) else {}),
            "objective": self.strategy.objective, "beta": beta,
            "base": before, "tuned": after,
            "change": {"preference_accuracy": after["preference_accuracy"] - before["preference_accuracy"],
                       "reward_margin": after["reward_margin"] - before["reward_margin"]},
            "examples": [{"prompt": e["prompt"][-1]["content"], "chosen": e["chosen"], "rejected": e["rejected"],
                          "base": b, "tuned": t} for e, b, t in zip(examples, base_answers, tuned_answers)],
            "pairs_detail": scoring.pair_details(pairs, base, tuned),
            "probe": probe.compare(base_probe, tuned_probe),
            "notes": ["A model prefers the chosen answer when it gives it a higher summed log-probability than the "
                      "rejected one after the same prompt; reward_margin is the mean of that gap in nats.",
                      "implicit_reward_* is DPO's reward of the tuned model against the base: beta x the change "
                      "in the gap."],
        }

    # --- cleanup -----------------------------------------------------------------------------------
    def cleanup(self) -> None:
        """Drop the model, trainer and data so repeated jobs in one process do not grow memory."""
        lm.free(self)
