"""What a training recipe is, and which recipe trains which job.

A recipe is one class per way of training (torchtune's recipes share the same verbs and no base class). The
runner calls ``setup -> train -> save -> evaluate -> cleanup`` (and, for a recipe that ``RefitsAllRows``,
``refit_all_rows -> save`` after ``evaluate``); ``studio eval`` calls ``load_trained ->
evaluate -> cleanup``. ``recipe_for`` is the one table from a job to its recipe: by task, and for classifiers
and regressors by whether the strategy searches (auto), trains on cached features, or fine-tunes.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

from ..strategies import get_strategy
from .context import TrainContext, TrainOutcome


class Recipe(Protocol):
    """The verbs the runner and ``studio eval`` call, in this order."""

    def setup(self) -> None:
        """Load the model and prepare the data; stops early (doing nothing more) when ``ctx.stop`` is set."""

    def train(self) -> TrainOutcome:
        """Train, reporting events; stops within one step when ``ctx.stop`` is set."""

    def save(self) -> None:
        """Write the trained model to ``ctx.run.model`` (main process only)."""

    def load_trained(self) -> None:
        """Instead of setup + train: load the model this run saved."""

    def evaluate(self) -> dict[str, Any]:
        """eval.json: the tuned model against the base (and baselines) on the validation split."""

    def cleanup(self) -> None:
        """Free models and data (the job manager runs many jobs in one process)."""


@runtime_checkable
class RefitsAllRows(Protocol):
    """A recipe whose model can learn from the validation rows too once the report has been written (the
    automatic search's heads: seconds to fit again). The runner calls it after ``evaluate``, then ``save``."""

    def refit_all_rows(self) -> str | None:
        """Fit the chosen model again on the training and validation rows; what was done, or None if nothing."""

    def extra_report(self) -> dict[str, Any]:
        """The report's sections that change with the refit (the leaderboard)."""


def _chat(ctx: TrainContext) -> Recipe:
    from .chat import ChatRecipe
    return ChatRecipe(ctx)


def _preference(ctx: TrainContext) -> Recipe:
    from .preference import PreferenceRecipe
    return PreferenceRecipe(ctx)


def _completion(ctx: TrainContext) -> Recipe:
    from .completion import CompletionRecipe
    return CompletionRecipe(ctx)


def _classifier(ctx: TrainContext) -> Recipe:
    strategy = get_strategy(ctx.config.strategy)
    if strategy.searches:
        from .classify.auto import AutoRecipe
        return AutoRecipe(ctx)
    if strategy.on_features:
        from .classify.head_only import HeadOnlyRecipe
        return HeadOnlyRecipe(ctx)
    from .classify.finetune import FineTuneRecipe
    return FineTuneRecipe(ctx)


def _regressor(ctx: TrainContext) -> Recipe:
    strategy = get_strategy(ctx.config.strategy)
    if strategy.searches:
        from .regression.auto import RegressionAutoRecipe
        return RegressionAutoRecipe(ctx)
    if strategy.on_features:
        from .regression.head_only import RegressionHeadOnlyRecipe
        return RegressionHeadOnlyRecipe(ctx)
    from .regression.finetune import RegressionFineTuneRecipe
    return RegressionFineTuneRecipe(ctx)


RECIPES: dict[str, Callable[[TrainContext], Recipe]] = {
    "chat": _chat,
    "preference": _preference,
    "text-completion": _completion,
    "text-classification": _classifier,
    "image-classification": _classifier,
    "text-regression": _regressor,
    "image-regression": _regressor,
}


def recipe_for(ctx: TrainContext) -> Recipe:
    """The recipe that trains ``ctx.config`` (its task, and its strategy where the task has several recipes)."""
    try:
        make = RECIPES[ctx.config.task]
    except KeyError:
        raise ValueError(f"no recipe trains task '{ctx.config.task}': use one of {', '.join(RECIPES)}.") from None
    return make(ctx)
