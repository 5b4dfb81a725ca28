"""``strategy: auto``: try what is known to work within a stated time budget, keep what cross-validation on the
training rows says is best, and retrain it on all of them.

On a few hundred rows the validation split (60-100 rows) cannot tell settings apart, so the choice is made by
cross-validation over the training rows and the validation split stays untouched for the report. The search:

1. heads on the cached frozen features (seconds each): logistic regression with its L2 penalty chosen, on the
   best tap, the best few taps together and every tap, each next to the classical features (raw pixels for images,
   TF-IDF for texts) and then alone; then a small MLP on the best of them when its timed cost fits, and RBF kernel
   heads (an RBF SVM's kind of model: a linear layer on similarities to the training rows) on the best features
   and on the classical features alone; for images, the best head again on features of augmented copies of the
   training images. Heads are compared by the log-loss of
   their out-of-fold probabilities, each calibrated by a temperature (accuracy on a few hundred rows cannot tell
   them apart), and the winner keeps its temperature;
2. fine-tunes (LoRA and full, at the learning rates that suit each), each trained on four fifths of the training
   rows with early stopping on the fifth held out, when the budget leaves time for them;
3. the winner retrained on all training rows (a fine-tune for the epochs its held-out run found best);
4. once the runner has written the report (on the validation split, which the search never saw), a winning head
   is fitted once more on the training and validation rows together and saved again (``refit_all_rows``,
   ``train.refit_all``): on a few hundred rows every row counts, and a head fits in a second. Not when the
   validation rows are a file of the user's own, and not for a fine-tune (another full training run).

Everything goes on a leaderboard (``leaderboard.json``, and eval.json's ``search``) with scores, times and why the
winner won. The model folder is a feature head (``core.saved.save_feature_head``) or a fine-tuned model in the
usual formats, so inference and ``studio eval`` load it like any other run.
"""
from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass

import numpy as np
import torch

from ... import saved
from ...data import groups
from ...distributed import is_main_process
from ...models import classifiers as cm
from ...models.classical import classical_for, classical_from_dict
from ...models.encoders import open_image
from ...models.heads import WHOLE_BLOCK, FeatureHead, LinearHead, head_probs
from ...presets import RECIPES, search_budget_seconds
from ...strategies import get_strategy, strategies_for
from ..context import TrainContext, TrainOutcome
from .base import BaseRecipe
from .fitting import HeadSpec, apply_temperature, cross_val_predict
from .search import LEADERBOARD_FILE, METRIC_WORDS, Candidate, Clock, Leaderboard, read_leaderboard
from .tune import TuneSettings, augment_image, build, fine_tune

FOLDS = 5
TOP_TAPS = 3
AUGMENTED_COPIES = 3
MLP_HIDDEN = 256
MLP_SHARE = 0.25  # the MLP runs when its cross-validation fits in this share of the budget left
FINE_TUNE_EPOCHS = 10
# A fine-tune must beat the best head by this much on the same held-out rows: accuracy points for a classifier,
# a share of the head's mean absolute error for a regressor (``objective.better``).
FINE_TUNE_MARGIN = 0.01
# A fine-tune step (forward + backward + update) costs about this many forward passes of the frozen encoder.
TRAIN_COST_FACTOR = 3.0
# kernel heads: gamma as multiples of 1 / the rows' mean squared distance; over more rows a kernel is slow and large
KERNEL_WIDTHS = (0.5, 1.0, 2.0, 4.0)
KERNEL_MAX_ROWS = 2000
KERNEL_KEEP_SHARE = 0.3  # kernel heads run while this share of the budget is left (the fine-tunes need the rest)
KERNEL_SHARE = 0.25  # and when their timed cost fits in this share of what is left


@dataclass(frozen=True)
class View:
    """A set of feature blocks a head reads: taps of the frozen model and, optionally, the classical features."""

    taps: tuple[int, ...]
    classical: bool = False
    augmented: bool = False

    def describe(self, tap_names: list[str], classical_name: str) -> str:
        if len(self.taps) == len(tap_names) and len(tap_names) > 2:
            parts = [f"all {len(tap_names)} taps"]
        else:
            parts = [tap_names[i] for i in self.taps]
        if self.classical:
            parts.append(classical_name)
        text = " + ".join(parts) if parts else classical_name
        return text + (" (with augmented copies)" if self.augmented else "")


@dataclass
class HeadWinner:
    view: View
    spec: HeadSpec


class AutoRecipe(BaseRecipe):
    """Search heads and fine-tunes by cross-validation on the training rows, within a time budget."""

    def __init__(self, ctx: TrainContext) -> None:
        super().__init__(ctx)
        self.clock: Clock | None = None
        self.board: Leaderboard | None = None
        self.classical_features = None
        self.classical_train: torch.Tensor | None = None
        self.classical_val: torch.Tensor | None = None
        self.augmented: list[tuple[list[torch.Tensor], torch.Tensor]] = []
        self.head: FeatureHead | LinearHead | None = None
        self.head_config: dict = {}
        self.model = None
        self.inputs = None
        self.winner_strategy = "head-only"
        self.winner_name = ""
        self.seconds_per_item: float | None = None
        self.chosen_head: Candidate | None = None  # the head the search kept, for ``refit_all_rows``
        self.head_choice = ""  # why that head and not the lowest-scoring one, when they differ
        self.final_rows: int | None = None  # rows the saved head was fitted on, when more than the training rows

    # --- setup ----------------------------------------------------------------------------------------
    def setup(self) -> None:
        """State the budget, then compute (or reload) the frozen features and the classical features."""
        if not is_main_process():
            return
        self.set_threads()
        t = self.ctx.config.train
        n_train = len(self.ctx.data.train)
        self.clock = Clock(search_budget_seconds(t.preset, n_train, t.max_minutes))
        self.ctx.reporter.line(
            f"Automatic search: at most {self.clock.budget:.0f} s on this machine for {n_train} training rows "
            f"({t.preset} preset). It scores heads on the frozen features by {FOLDS}-fold cross-validation on the "
            "training rows, then fine-tunes if time is left, and retrains the best on all training rows; the "
            "validation split is kept for the report.")
        self.ctx.reporter.emit("search", budget_s=round(self.clock.budget, 1), rows=n_train, folds=FOLDS)
        started = time.perf_counter()
        features = self.base_features()
        if features is not None and len(self.ctx.data.train):
            self.seconds_per_item = (time.perf_counter() - started) / (n_train + len(self.ctx.data.validation))
        self._classical_features()

    def _classical_features(self) -> None:
        train_items, _ = self.split("train")
        val_items, _ = self.split("validation")
        self.ctx.reporter.phase("caching", "Computing the classical features (raw pixels or TF-IDF).")
        self.classical_features = classical_for(self.task).fit(train_items)
        self.classical_train = self.classical_features.transform(train_items)
        self.classical_val = self.classical_features.transform(val_items)

    @property
    def classical_name(self) -> str:
        return "raw pixels" if self.image else "TF-IDF"

    # --- the search -----------------------------------------------------------------------------------
    def train(self) -> TrainOutcome:
        """Search, retrain the winner on all training rows, and write leaderboard.json."""
        if not is_main_process():
            return TrainOutcome(extra={"note": "the automatic search runs on the main process only"})
        if self.features is None:
            return TrainOutcome(stopped=True, extra={"trained": False})
        _, y_train = self.split("train")
        folds = self.objective.folds(y_train, FOLDS, self.ctx.config.train.seed, self.train_groups)
        self.board = Leaderboard(budget_s=self.clock.budget, folds=len(folds), rows=len(y_train),
                                 metric=self.objective.metric, higher_is_better=self.objective.higher_is_better,
                                 grouped_by=(self.ctx.data.columns or {}).get(groups.ROLE) if self.train_groups
                                 else None)
        best_head = self._search_heads(folds, y_train)
        tuned = self._search_fine_tunes(folds, y_train, best_head)
        stopped = self.ctx.stop.is_set()
        if tuned is not None and not stopped:
            self._retrain_fine_tune(tuned, y_train)
        elif best_head is not None and not stopped:
            self._retrain_head(best_head, y_train)
        self.board.used_s = self.clock.used
        self.board.write(self.ctx.run.path / LEADERBOARD_FILE)
        self.ctx.reporter.line(f"Chosen: {self.winner_name}. {self.board.why} (search took "
                               f"{self.clock.used:.0f} s of its {self.clock.budget:.0f} s)")
        return TrainOutcome(stopped=stopped, global_step=0, extra={"winner": self.winner_name})

    # --- heads ----------------------------------------------------------------------------------------
    def _views(self, y_train: list) -> list[View]:
        n_taps = len(self.features.tap_names)
        if n_taps == 1:
            taps_sets = [(0,)]
        else:
            scores = self.objective.tap_scores(self.features.train, y_train, self.ctx.config.train.seed,
                                               self.train_groups)
            order = sorted(range(n_taps), key=lambda i: (-(scores[i] or 0.0), -i))
            taps_sets = [(order[0],), tuple(sorted(order[:TOP_TAPS])), tuple(range(n_taps))]
            taps_sets = list(dict.fromkeys(taps_sets))
        # the network's features next to the classical ones first: they won cross-validation on every real set
        # measured (digits, two sets of Debian descriptions), and when a busy machine spends most of the budget on
        # the features, the first view is the one that still runs
        return [View(t, classical=True) for t in taps_sets] + [View(t) for t in taps_sets] + [View((), True)]

    def _matrix(self, view: View, split: str = "train", kernel: bool = False
                ) -> tuple[torch.Tensor, list[bool | str], list[int]]:
        """The view's feature blocks side by side, how each is standardised, and their widths. Under a kernel
        head, raw pixels are centred and scaled as one block (an RBF kernel on per-pixel z-scores weighs the
        near-constant border as much as the strokes: on unseen digit scans cross-validated MAE 0.80 against
        0.72 for the whole-block scaling)."""
        taps = self.features.train if split == "train" else self.features.validation
        classical = self.classical_train if split == "train" else self.classical_val
        blocks = [taps[i].float() for i in view.taps] + ([classical] if view.classical else [])
        scaling = self.classical_features.standardise
        if kernel and scaling is True:
            scaling = WHOLE_BLOCK
        flags = [True] * len(view.taps) + ([scaling] if view.classical else [])
        return torch.cat(blocks, dim=1), flags, [int(b.shape[1]) for b in blocks]

    def _augmented_matrix(self, view: View) -> list[torch.Tensor]:
        out = []
        for taps, classical in self.augmented:
            blocks = [taps[i].float() for i in view.taps] + ([classical] if view.classical else [])
            out.append(torch.cat(blocks, dim=1))
        return out

    def _score_view(self, view: View, specs: list[HeadSpec], folds, y_train: list) -> list[Candidate]:
        x, flags, dims = self._matrix(view, kernel=any(s.kernel_width for s in specs))
        extra = self._augmented_matrix(view) if view.augmented else []
        y = self.objective.targets(y_train)
        seed = self.ctx.config.train.seed

        def prepare(train_idx, test_idx):
            scaler = FeatureHead(dims, self.objective.outputs)
            rows = torch.cat([x[train_idx]] + [a[train_idx] for a in extra])
            scaler.set_scale(x[train_idx], flags)
            labels = torch.cat([y[train_idx]] * (1 + len(extra)))
            return scaler.prepare(rows), labels, None, scaler.prepare(x[test_idx])

        def fit(x_fold, y_fold, spec, weights):
            return self.objective.fit(x_fold, y_fold, spec, seed, weights)

        started = time.perf_counter()
        predictions = cross_val_predict(prepare, len(y_train), folds, specs, fit, self.objective.predict,
                                        self.ctx.stop)
        seconds = time.perf_counter() - started  # every penalty (and width) tried: what choosing this head cost
        features = view.describe(self.features.tap_names, self.classical_name)
        out = []
        covered = np.sort(np.concatenate([test for _, test in folds]))  # every row, unless a class is a singleton
        held = folds[0][1]
        values = np.asarray(y_train)
        for spec, p in zip(specs, predictions):
            if p is None:
                continue
            candidate = Candidate(
                name=f"{self._head_kind(spec)} on {features}", kind="head",
                settings={"features": features, "taps": [self.features.tap_names[i] for i in view.taps],
                          "classical": view.classical, "augmented": view.augmented,
                          "head": self.objective.describe_head(spec), "l2": spec.l2, "hidden": spec.hidden,
                          **({"kernel_width": spec.kernel_width} if spec.kernel_width else {})},
                seconds=round(seconds, 2),
                **self.objective.candidate_scores(values[covered], p[covered], values[held], p[held]))
            candidate._winner = HeadWinner(view, spec)  # kept in memory for the retrain, not serialised
            candidate._oof = (values[covered], p[covered])  # out-of-fold predictions: the penalty rule reads them
            out.append(candidate)
        return out

    def _search_heads(self, folds, y_train: list) -> Candidate | None:
        self.ctx.reporter.phase("training", "Scoring heads on the frozen features by cross-validation.")
        specs = [HeadSpec(l2=l2) for l2 in self.objective.l2_grid]
        best: Candidate | None = None
        scored: list[Candidate] = []
        for view in self._views(y_train):
            if self.ctx.stop.is_set() or (best is not None and self.clock.left < self.clock.budget * 0.3):
                name = (f"{self.objective.linear_name} on "
                        f"{view.describe(self.features.tap_names, self.classical_name)}")
                self._report(self.board.add(Candidate(name, "head", status="skipped",
                                                      note="not run: the time budget was spent")))
                continue
            candidates = self._score_view(view, specs, folds, y_train)
            if not candidates:
                continue
            top = self.objective.choose_penalty(candidates, len(y_train))
            rule = getattr(self.objective, "penalty_rule", "the strongest within one standard error of the best "
                                                           f"cross-validated {METRIC_WORDS[self.objective.metric]}")
            top.note = (f"L2 penalty: {rule}, among "
                        + ", ".join(f"{c.settings['l2']:g} ({self._describe_score(c)})" for c in candidates))
            self._report(self.board.add(top))
            scored.append(top)
            best = top if self._head_better(top, best) else best
        if best is None:
            return None
        for candidate in self._refinements(best, folds, y_train):
            self._report(self.board.add(candidate))
            if candidate.status == "scored":
                scored.append(candidate)
                best = candidate if self._head_better(candidate, best) else best
        chosen, self.head_choice = self.objective.choose_head(scored, best)
        return chosen

    def _head_kind(self, spec: HeadSpec) -> str:
        if spec.kernel_width:  # "RBF kernel logistic regression", "RBF kernel ridge regression"
            return f"{spec.kind} {self.objective.linear_name.lower()}"
        return spec.kind or self.objective.linear_name

    def _head_better(self, a: Candidate, b: Candidate | None) -> bool:
        """Whether head ``a`` beats ``b`` in cross-validation, by the objective's rule for heads."""
        rule = getattr(self.objective, "head_better", None)
        if rule is not None:
            return rule(a, b)
        score = self.objective.score_of
        return b is None or self.objective.better(score(a), score(b))

    def _head_words(self, head: Candidate) -> str:
        """Why the search's head is the one kept: the best in cross-validation, or the simpler one within the noise."""
        if self.head_choice:
            return self.head_choice
        return (f"{head.name} scored best in cross-validation on the training rows "
                f"({self._describe_score(head)})")

    @staticmethod
    def _calibration_words(c: Candidate) -> str:
        if not c.temperature or c.cv_calibrated_log_loss is None:
            return ""
        return (f" Heads are compared by the log-loss of their out-of-fold probabilities, each calibrated (this one's "
                f"logits are divided by {c.temperature:.2f}, which changes no prediction); accuracy on a few hundred "
                "rows moves in steps too coarse to tell them apart.")

    def _describe_score(self, c: Candidate) -> str:
        text = self.objective.show(self.objective.score_of(c))
        if c.cv_calibrated_log_loss is not None:
            text += f", log-loss {c.cv_calibrated_log_loss:.3f}"
        return text

    def _refinements(self, best: Candidate, folds, y_train: list):
        """An MLP on the best features, then (images) the best head on augmented copies too."""
        winner: HeadWinner = best._winner
        view = winner.view
        mlp = HeadSpec(l2=1e-2, hidden=MLP_HIDDEN, steps=200)
        cost = self._mlp_cost(view, mlp, len(folds)) if self.clock.left > self.clock.budget * 0.4 else None
        if cost is not None and cost <= self.clock.left * MLP_SHARE and not self.ctx.stop.is_set():
            yield from self._score_view(view, [mlp], folds, y_train)
        else:
            why = (f"it would take about {cost:.0f} s, more than {MLP_SHARE:.0%} of the {self.clock.left:.0f} s left "
                   "(the fine-tunes need them more)" if cost is not None else "the time budget was spent")
            yield Candidate(f"MLP on {best.settings['features']}", "head", status="skipped", note=f"not run: {why}")
        yield from self._kernel_heads(winner.view, folds, y_train)
        if not (self.image and self.objective.augments):
            return
        if not self._augment(self.clock.budget * 0.35):
            yield Candidate(f"{best.name} (with augmented copies)", "head", status="skipped",
                            note="not run: too little of the time budget was left to compute their features")
            return
        yield from self._score_view(dataclasses.replace(view, augmented=True), [winner.spec], folds, y_train)

    def _kernel_heads(self, best_view: View, folds, y_train: list):
        """An RBF kernel head on the best head's features, then on the classical features alone (an RBF SVM's kind
        of model on raw pixels or TF-IDF), each with its width and penalty chosen by cross-validation."""
        kind = self._head_kind(HeadSpec(kernel_width=1.0))
        views = list(dict.fromkeys([best_view, View((), classical=True)]))
        for view in views:
            name = f"{kind} on {view.describe(self.features.tap_names, self.classical_name)}"
            if len(y_train) > KERNEL_MAX_ROWS:
                yield Candidate(name, "head", status="skipped", note=f"not run: a kernel over {len(y_train)} rows "
                                f"(more than {KERNEL_MAX_ROWS}) is slow to fit and large to save")
                return
            if self.ctx.stop.is_set() or self.clock.left < self.clock.budget * KERNEL_KEEP_SHARE:
                yield Candidate(name, "head", status="skipped", note="not run: the time budget was spent")
                continue
            specs = [HeadSpec(l2=l2, kernel_width=width) for width in KERNEL_WIDTHS
                     for l2 in self.objective.kernel_l2_grid]
            fits = len(KERNEL_WIDTHS) if self.objective.penalties_share_a_fit else len(specs)
            cost = self._fit_cost(view, specs[len(specs) // 2], len(folds)) * fits
            if cost > self.clock.left * KERNEL_SHARE:
                yield Candidate(name, "head", status="skipped", note=f"not run: it would take about {cost:.0f} s, more "
                                f"than {KERNEL_SHARE:.0%} of the {self.clock.left:.0f} s left")
                continue
            candidates = self._score_view(view, specs, folds, y_train)
            tops = []
            for width in KERNEL_WIDTHS:
                same = [c for c in candidates if c.settings["kernel_width"] == width]
                if same:
                    tops.append(self.objective.choose_penalty(same, len(y_train)))
            if not tops:
                continue
            top = tops[0]
            for other in tops[1:]:
                top = other if self._head_better(other, top) else top
            top.note = ("width and L2 penalty by cross-validation, among widths "
                        + ", ".join(f"{c.settings['kernel_width']:g} (L2 {c.settings['l2']:g}: "
                                    f"{self._describe_score(c)})" for c in tops))
            yield top

    def _mlp_cost(self, view: View, spec: HeadSpec, n_folds: int) -> float:
        """Seconds the MLP's cross-validation would take, from a few timed steps on these features (its cost grows
        with their width: on 384 texts with TF-IDF next to the network's features it took a minute on 2 busy
        cores, where logistic regression took two seconds). Two short fits, of one step and of four, tell a fit's
        fixed cost (splitting TF-IDF's sparse columns off, ``fitting.Rows``: paid once a fold) from its steps' cost."""
        one = self._fit_cost(view, dataclasses.replace(spec, steps=1), n_folds)
        four = self._fit_cost(view, dataclasses.replace(spec, steps=4), n_folds)
        per_step = max(0.0, (four - one) / 3)
        return max(0.0, one - per_step) + per_step * spec.steps

    def _fit_cost(self, view: View, spec: HeadSpec, n_folds: int) -> float:
        """Seconds ``spec``'s cross-validation would take on ``view``: one timed fit on a fold's share of the rows,
        times the folds."""
        x, flags, dims = self._matrix(view, kernel=bool(spec.kernel_width))
        scaler = FeatureHead(dims, self.objective.outputs)
        scaler.set_scale(x, flags)
        rows = scaler.prepare(x[: max(1, len(x) * (n_folds - 1) // max(1, n_folds))])
        started = time.perf_counter()
        self.objective.fit(rows, self.objective.targets(self.split("train")[1])[: len(rows)], spec,
                           self.ctx.config.train.seed)
        return (time.perf_counter() - started) * n_folds

    def _augment(self, keep_s: float) -> bool:
        """Features of AUGMENTED_COPIES augmented copies of the training images, while ``keep_s`` seconds of the
        budget stay left after each copy (a copy costs what the training split's features cost)."""
        from .features import compute

        items, _ = self.split("train")
        per_copy = (self.seconds_per_item or 0.01) * len(items)
        rng = random.Random(self.ctx.config.train.seed)
        encoder = self.load_base_encoder()
        while len(self.augmented) < AUGMENTED_COPIES:
            if self.clock.left - per_copy < keep_s or self.ctx.stop.is_set():
                break
            self.ctx.reporter.phase("caching", f"Features of augmented copy {len(self.augmented) + 1} of the "
                                               "training images (small rotations, shifts, zooms; no flips).")
            images = [augment_image(open_image(item), rng) for item in items]
            taps = compute(encoder, images, None, self.ctx.stop)
            if taps is None:
                break
            self.augmented.append((taps, self.classical_features.transform(images)))
        return bool(self.augmented)

    def _report(self, candidate: Candidate) -> None:
        self.ctx.reporter.emit("candidate", **{k: v for k, v in candidate.to_dict().items() if k != "settings"})
        show, score = self.objective.show, self.objective.score_of
        if candidate.status != "scored":
            self.ctx.reporter.line(f"Candidate: {candidate.name}: {candidate.note}.")
        elif score(candidate) is not None:
            self.ctx.reporter.line(f"Candidate: {candidate.name}: {show(score(candidate))} in cross-validation "
                                   f"({candidate.seconds:.1f} s).")
        else:
            self.ctx.reporter.line(f"Candidate: {candidate.name}: {show(score(candidate, 'holdout'))} on the "
                                   f"held-out fifth of the training rows ({candidate.seconds:.1f} s; "
                                   f"{candidate.note}).")

    # --- fine-tunes -----------------------------------------------------------------------------------
    def _fine_tune_strategies(self) -> list[str]:
        transformer = self.ctx.model.kind == "transformers"
        return [k for k in strategies_for(self.task, transformer) if get_strategy(k).searched]

    def _search_fine_tunes(self, folds, y_train: list, best_head: Candidate | None):
        items, _ = self.split("train")
        train_idx, held_idx = folds[0]
        best = None
        for key in self._fine_tune_strategies():
            recipe = RECIPES.get((self.task, key))
            lr = recipe.learning_rate if recipe else 1e-4
            name = _tune_name(key, lr)
            estimate = self._epoch_estimate(len(train_idx), len(held_idx))
            allowed = self.clock.left * 0.45  # keep time to retrain the winner on all rows
            if self.ctx.stop.is_set() or estimate * 2 > allowed:
                note = (f"not run: two epochs need about {estimate * 2:.0f} s and {max(0.0, allowed):.0f} s of the "
                        "budget could go to it; the Thorough preset or a GPU gives it time")
                self._report(self.board.add(Candidate(name, "fine-tune", {"strategy": key, "learning_rate": lr},
                                                      status="skipped", note=note)))
                continue
            candidate, result = self._run_fine_tune(key, lr, items, y_train, train_idx, held_idx, allowed)
            self._report(self.board.add(candidate))
            if candidate.status != "skipped" and \
                    self.objective.better(result.best_score, best[1].best_score if best else None):
                best = (candidate, result, key, lr)
            if self.clock.left < self.clock.budget * 0.25:
                break
        return self._pick(best, best_head, folds)

    def _epoch_estimate(self, n_train: int, n_held: int) -> float:
        per_item = self.seconds_per_item or 0.02
        return per_item * (TRAIN_COST_FACTOR * n_train + n_held)

    def _run_fine_tune(self, key: str, lr: float, items, y_train, train_idx, held_idx, allowed: float):
        settings = TuneSettings(key, lr, FINE_TUNE_EPOCHS, augment=self.augments, seed=self.ctx.config.train.seed)
        self.ctx.reporter.phase("training", f"Trying a {_fine_tune_title(key)} on {len(train_idx)} training rows, "
                                            f"scored on the other {len(held_idx)}.")
        started = time.perf_counter()
        torch.manual_seed(self.ctx.config.train.seed)
        model, inputs = build(self.ctx.model, self.task, self.labels, key, self.ctx.config.train, self.image_size,
                              self.objective)
        result = fine_tune(model, inputs, [items[i] for i in train_idx], [y_train[i] for i in train_idx],
                           [items[i] for i in held_idx], [y_train[i] for i in held_idx], settings,
                           deadline=time.perf_counter() + allowed, objective=self.objective, stop=self.ctx.stop)
        seconds = time.perf_counter() - started
        status = "scored" if result.best_score is not None else "skipped"
        note = (f"best after {result.best_epoch} of {result.epochs_run} epochs (early stopping on the held-out "
                f"rows; held-out {METRIC_WORDS[self.objective.metric]} by epoch: "
                f"{', '.join(self.objective.show(a) for a in result.history)})"
                if result.history else "the budget ran out before the first epoch ended")
        if result.stopped and result.history:
            note += "; stopped when its share of the budget ran out"
        candidate = Candidate(_tune_name(key, lr), "fine-tune",
                              {"strategy": key, "learning_rate": lr, "epochs": result.best_epoch,
                               "augmented": settings.augment, "loss": self.objective.loss_name},
                              status=status, seconds=round(seconds, 1), note=note,
                              **{f"holdout_{self.objective.metric}": result.best_score})
        candidate._model = (result.model, inputs) if status == "scored" else None
        result.seconds_per_epoch = result.seconds_per_epoch or seconds / max(1, result.epochs_run)
        return candidate, result

    def _pick(self, best, best_head: Candidate | None, folds: list[tuple[np.ndarray, np.ndarray]]):
        """The fine-tune when it beats the best head on the same held-out rows by FINE_TUNE_MARGIN and by more than
        the noise of those rows (one paired standard error of the row-by-row difference), else None.

        The fine-tune's score is its best epoch on the held-out fifth, chosen on those very rows, and a fifth of a
        few hundred rows moves in steps of one row: on unseen Debian descriptions a LoRA fine-tune won by one row of
        77 (85.7 % against 84.4 %) and then scored 0.800 on the test rows, where the head it displaced scored
        0.838. The paired rule keeps the head unless the fine-tune is ahead by more than chance."""
        show, score = self.objective.show, self.objective.score_of
        if best is None:
            if best_head is not None:
                self.board.why = f"{self._head_words(best_head)}.{self._calibration_words(best_head)}"
            return None
        candidate, result, key, lr = best
        head_score = score(best_head, "holdout") if best_head is not None else None
        beats = self.objective.better(result.best_score, head_score, FINE_TUNE_MARGIN)
        ahead, noise = self._paired_gap(candidate, best_head, folds) if beats else (0.0, 0.0)
        if beats and ahead - noise > 1e-9:  # one row ahead is exactly one standard error: within the noise
            self.board.why = (f"{candidate.name} scored {show(result.best_score)} on the held-out fifth of the "
                              f"training rows, where the best head ({best_head.name if best_head else 'none'}) "
                              f"scored {show(head_score)}.")
            return best
        if beats:
            verdict = (f"{candidate.name} scored {show(result.best_score)}, ahead by less than the noise of "
                       f"{len(folds[0][1])} rows (one paired standard error), so the head is kept")
        else:
            verdict = f"against {show(result.best_score)} for {candidate.name}, so the fine-tune did not pay"
        self.board.why = (f"{self._head_words(best_head)}; on the held-out fifth it scored {show(head_score)}; "
                          f"{verdict}.")
        candidate._model = None
        return None

    def _paired_gap(self, candidate: Candidate, best_head: Candidate | None,
                    folds: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
        """(mean, standard error) of the fine-tune's row-by-row score minus the best head's out-of-fold one on the
        first fold's held-out rows, where the fine-tune was scored (classes: right or wrong; numbers: minus the
        absolute error). (inf, 0) when there is no head to compare with."""
        held_idx = folds[0][1]
        oof = getattr(best_head, "_oof", None)
        trained = getattr(candidate, "_model", None)
        if best_head is None or oof is None or trained is None or len(held_idx) < 2:
            return float("inf"), 0.0
        items, y_train = self.split("train")
        covered = np.sort(np.concatenate([test for _, test in folds]))  # the rows the out-of-fold arrays hold
        at = np.searchsorted(covered, held_idx)
        head_rows = self.objective.row_scores(oof[0][at], oof[1][at])
        model, inputs = trained
        tune_rows = self.objective.model_row_scores(model, inputs, [items[i] for i in held_idx],
                                                    [y_train[i] for i in held_idx])
        gap = tune_rows - head_rows
        return float(gap.mean()), float(gap.std(ddof=1) / np.sqrt(len(gap)))

    # --- the winner -----------------------------------------------------------------------------------
    def _announce(self, name: str) -> None:
        """The leaderboard's winner, and an event for the live page (its candidates chart marks the bar)."""
        self.board.winner = name
        self.ctx.reporter.emit("winner", name=name, why=self.board.why)

    def _retrain_head(self, best: Candidate, y_train: list) -> None:
        winner: HeadWinner = best._winner
        self.ctx.reporter.phase("training", f"Retraining the winner on all {len(y_train)} training rows: {best.name}.")
        x, flags, dims = self._matrix(winner.view, kernel=bool(winner.spec.kernel_width))
        self.head = self._fit_head(best, x, flags, dims, y_train)
        self.head_config = {"inputs": self._inputs_spec(winner.view), "winner": best.name,
                            "head": self.objective.describe_head(winner.spec),
                            **({"temperature": round(best.temperature, 4)} if best.temperature else {})}
        self.winner_strategy, self.winner_name = "head-only", best.name
        self._announce(best.name)
        self.chosen_head = best

    def _fit_head(self, best: Candidate, x: torch.Tensor, flags, dims, y_rows: list) -> FeatureHead:
        """The winning head fitted on ``x`` (the rows of ``y_rows``, training rows first), with the augmented
        copies of the training rows when its view has them, and the cross-validated temperature."""
        winner: HeadWinner = best._winner
        extra = self._augmented_matrix(winner.view) if winner.view.augmented else []
        _, y_train = self.split("train")
        head = FeatureHead(dims, self.objective.outputs, winner.spec.hidden)
        head.set_scale(x, flags)
        rows = torch.cat([x] + extra)
        y = self.objective.targets(list(y_rows) + list(y_train) * len(extra))
        head.body = self.objective.fit(head.prepare(rows), y, winner.spec, self.ctx.config.train.seed)
        if best.temperature:  # the cross-validated temperature: its probabilities mean what they say
            apply_temperature(head.body, best.temperature)
        return head.eval()

    def refit_all_rows(self) -> str | None:
        """After the report: the chosen head fitted again on the training and validation rows together, so the
        saved model has learnt from every row the user gave (a few hundred rows: each one counts). The report
        keeps the scores measured before, on rows that model had not seen. Returns what was done, in words, or
        None when the model stays as it was evaluated (``train.refit_all`` off, a validation file of the user's
        own, a fine-tune won, or Stop was pressed)."""
        best = self.chosen_head
        train = self.ctx.config.train
        if (best is None or self.head is None or not train.refit_all or self.ctx.config.data.validation_path
                or self.ctx.stop.is_set()):
            return None
        started = time.perf_counter()
        winner: HeadWinner = best._winner
        train_items, y_train = self.split("train")
        val_items, y_val = self.split("validation")
        if winner.view.classical:  # TF-IDF learns the validation rows' words too (raw pixels have nothing to fit)
            self.classical_features = classical_for(self.task).fit(train_items + val_items)
            self.classical_train = self.classical_features.transform(train_items)
            self.classical_val = self.classical_features.transform(val_items)
        kernel = bool(winner.spec.kernel_width)
        x_train, flags, dims = self._matrix(winner.view, "train", kernel)
        x_val, _, _ = self._matrix(winner.view, "validation", kernel)
        rows = len(y_train) + len(y_val)
        self.ctx.reporter.phase("training", f"Fitting the chosen head again on all {rows} rows (training and "
                                            "validation together) for the saved model.")
        self.head = self._fit_head(best, torch.cat([x_train, x_val]), flags, dims, y_train + y_val)
        self.head_config["inputs"] = self._inputs_spec(winner.view)  # TF-IDF's width changed with its vocabulary
        self.final_rows = rows
        note = (f"The saved model is the chosen head fitted again on all {rows} rows, the {len(y_val)} validation "
                f"rows included, after the report; the report's scores are those of the same head trained on the "
                f"{len(y_train)} training rows, on validation rows it had not seen.")
        self.board.final_rows = rows  # leaderboard.json says so once ``save`` has written this head
        self.ctx.reporter.line(f"{note} ({time.perf_counter() - started:.1f} s)")
        return note

    def _inputs_spec(self, view: View) -> list[dict]:
        names = self.features.tap_names
        spec = [{"kind": "tap", "index": i, "name": names[i], "dim": self.features.tap_dims[i]} for i in view.taps]
        if view.classical:
            spec.append({"kind": self.classical_features.kind, "dim": self.classical_features.dim})
        return spec

    def _retrain_fine_tune(self, best, y_train: list) -> None:
        candidate, result, key, lr = best
        items, _ = self.split("train")
        model, inputs = candidate._model
        projected = result.seconds_per_epoch * len(items) / max(1, len(items) - len(items) // FOLDS) \
            * max(1, result.best_epoch)
        self.winner_strategy, self.winner_name = key, candidate.name
        self._announce(candidate.name)
        if projected < self.clock.left and not self.ctx.stop.is_set():
            self.ctx.reporter.phase("training", f"Retraining the winner on all {len(items)} training rows for "
                                                f"{result.best_epoch} epochs: {candidate.name}.")
            del model
            torch.manual_seed(self.ctx.config.train.seed)
            model, inputs = build(self.ctx.model, self.task, self.labels, key, self.ctx.config.train,
                                  self.image_size, self.objective)
            settings = TuneSettings(key, lr, max(1, result.best_epoch), augment=self.augments,
                                    seed=self.ctx.config.train.seed)
            final = fine_tune(model, inputs, items, y_train, [], [], settings,
                              deadline=self.clock.deadline() + projected * 0.5, objective=self.objective,
                              stop=self.ctx.stop, on_step=self._on_step())
            if final.stopped:
                self.board.retrained_on_all_rows = False
        else:
            self.board.retrained_on_all_rows = False
            self.board.why += (" The budget had no time left to retrain it on all rows, so the model trained on "
                               "four fifths of them (best epoch kept) is the one saved.")
        self.objective.finish(model)  # a regressor's standardised output becomes the target's units
        self.model, self.inputs = model, inputs
        self.image_size = getattr(inputs, "image_size", self.image_size) if self.image else self.image_size

    @property
    def augments(self) -> bool:
        """Fine-tunes see augmented images when a changed picture keeps its target (a class; not a count)."""
        return self.image and self.objective.augments

    def _on_step(self):
        def on_step(point: dict) -> None:
            self.ctx.reporter.emit("train", **point)
        return on_step

    # --- saving, loading, predicting ------------------------------------------------------------------
    def input_info(self) -> dict:
        return {**super().input_info(), "strategy": self.winner_strategy, "search": "auto",
                "winner": self.winner_name, **({"fitted_on_rows": self.final_rows} if self.final_rows else {})}

    def save(self) -> None:
        """The winner in its usual format, labels.json, classifier.json and the base centroids."""
        folder = self.ctx.run.model
        if self.head is not None:
            config = {"base_model": self.ctx.config.model, "task": self.task, "num_labels": self.objective.outputs,
                      **({"input_size": self.image_size} if self.image else {}),
                      **self.encoder.describe, **self.head_config}
            uses_classical = any(i["kind"] != "tap" for i in self.head_config["inputs"])
            classical = self.classical_features.to_dict() if uses_classical else None
            saved.save_feature_head(folder, self.head, config, classical)
            self.write_info(folder, self.input_info())
        elif self.model is not None:
            tokenizer = getattr(self.inputs, "tokenizer", None)
            cm.save_model(self.model, folder, self.ctx.model, tokenizer)
            self.write_info(folder, {**self.input_info(), **self.inputs.settings()})
        else:
            self.ctx.reporter.line("No model was chosen, so nothing was saved.", level="warning")
            return
        self.save_centroids()
        if self.board is not None:  # after the model: its final_rows never names a head that is not saved yet
            self.board.write(self.ctx.run.path / LEADERBOARD_FILE)

    def load_trained(self) -> None:
        """Load the saved winner and the features the evaluation needs (for ``studio eval``)."""
        self.set_threads()
        info = self.read_info()
        self.winner_strategy, self.winner_name = info["strategy"], info.get("winner", "")
        self.image_size = info.get("image_size")
        if get_strategy(self.winner_strategy).on_features:
            self.head, self.head_config = saved.load_head(self.ctx.run.model)
            self.base_features()
            state = self.head_config.get("classical")
            if state is not None:
                self.classical_features = classical_from_dict(state)
                self.classical_val = self.classical_features.transform(self.split("validation")[0])
            return
        self.model = self.objective.load_model(self.ctx.run.model, self.ctx.model, self.task)
        if not self.image:
            from ...models import load_tokenizer
            self.inputs = cm.ModelInputs(self.task, tokenizer=load_tokenizer(self.ctx.model),
                                         max_length=info["max_length"])
        else:
            self.inputs = cm.ModelInputs(self.task, image_size=int(info["image_size"]), mean=info["mean"],
                                         std=info["std"], interpolate=bool(info.get("interpolate")))
        self.base_features()

    def tuned_outputs(self) -> np.ndarray:
        """The saved winner's predictions on the validation split: (N, C) probabilities, or (N,) numbers."""
        if self.model is not None:
            return self.objective.predict_items(self.model, self.inputs, self.split("validation")[0])
        if isinstance(self.head, LinearHead):
            return head_probs(self.head, self.features.validation[int(self.head_config["tap_index"])])
        blocks = [self.features.validation[int(i["index"])].float() if i["kind"] == "tap" else self.classical_val
                  for i in self.head_config["inputs"]]
        return self.objective.predict(self.head, torch.cat(blocks, dim=1))

    def tuned_probs(self) -> np.ndarray:
        return self.tuned_outputs()

    def extra_report(self) -> dict:
        board = self.board.to_dict() if self.board is not None else read_leaderboard(self.ctx.run.path)
        return {"search": board, "winner": self.winner_name, "chosen_strategy": self.winner_strategy}

    def cleanup(self) -> None:
        self.head = self.model = self.inputs = None
        self.augmented = []
        self.classical_train = self.classical_val = None
        super().cleanup()


def _fine_tune_title(key: str) -> str:
    """"LoRA fine-tune", "Full fine-tune": the strategy's title, "fine-tune" said once."""
    title = get_strategy(key).title
    return title if "fine-tune" in title.lower() else f"{title} fine-tune"


def _tune_name(key: str, lr: float) -> str:
    return f"{_fine_tune_title(key)} (lr {lr:g})"

