"""Step 3, strategy and settings: each strategy with one sentence, a preset, and an advanced accordion of typed
fields made from the ``Setting`` metadata on ``TrainConfig``. A panel shows the YAML and the ``studio train``
command of the job exactly as it will run (``core.plan``: the same plan the run makes, so the YAML is the run's
config.yaml byte for byte), and the memory estimate for this machine (also shown on the model step).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

from core.config import ConfigError, JobConfig
from core.memory import CATALOG_SHAPES, ModelShape, estimate_config, model_shape
from core.plan import image_side
from core.presets import SEARCH_BUDGET_S, search_budget_seconds
from core.strategies import get_strategy, strategies_for
from core.tasks import get_task

from . import tab_model
from .context import JobForm, Studio, chosen_model
from .form import ADVANCED, INITIAL, SWITCHES, command_for
from .views import notice

PRESET_CHOICES = [("Quick: a first look in minutes", "quick"), ("Balanced", "balanced"),
                  ("Thorough: the final model", "thorough")]
SWITCH_LABELS = {  # name -> (label, info)
    "precision": ("Precision", "automatic: bf16 for chat LoRA where the CPU or GPU multiplies bf16 natively, "
                  "else fp32"),
    "compile": ("Compile the model (torch.compile)", "automatic: on for chat runs of 300+ micro-batches on a CPU; "
                "costs about a minute once"),
}


@dataclass
class SettingsTab:
    """The settings step's components."""

    empty: gr.HTML
    strategy: gr.Radio
    strategy_help: gr.Markdown
    preset: gr.Radio
    name: gr.Textbox
    validation: gr.Slider
    numbers: dict
    switches: dict
    memory: gr.HTML
    yaml: gr.Code
    command: gr.Code
    # What fires once the strategy list fits the data and the model (after new data, another model, a typed one).
    # Whatever reads the strategy chains on these: run beside the list's update it would get the previous task's
    # strategy, outside the new choices, and gradio answers that with an error toast.
    listed: list = field(default_factory=list)
    # The strategy last shown, kept so a new list can keep it: the radio itself cannot be an input there, since two
    # list updates may overlap and the second would send a value outside the choices the first just set.
    current: gr.State | None = None


def build(st: Studio) -> SettingsTab:
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
                with gr.Row():
                    numbers = {key: gr.Number(value=INITIAL[key], label=meta.label, precision=0 if meta.integer else None,
                                              minimum=0, info=meta.help or None, elem_id=f"settings-{key}",
                                              min_width=150)
                               for key, meta in ADVANCED.items()}
                with gr.Row():
                    switches = {key: gr.Dropdown(choices, value="auto", label=SWITCH_LABELS[key][0],
                                                 info=SWITCH_LABELS[key][1], elem_id=f"settings-{key}", min_width=240)
                                for key, choices in SWITCHES.items()}
        with gr.Column(scale=2):
            memory = gr.HTML(elem_id="settings-memory")
            with gr.Accordion("Config and command (reproduce this job)", open=True):
                yaml_view = gr.Code(language="yaml", label="config.yaml", interactive=False, lines=14,
                                    elem_id="settings-yaml")
                command = gr.Code(language="shell", label="Command line", interactive=False, lines=1,
                                  elem_id="settings-command")
    next_button = gr.Button("Next: train →", variant="primary", elem_id="settings-next")
    next_button.click(lambda: gr.Tabs(selected="train"), None, st.tabs)
    current = gr.State(None)
    strategy.change(lambda key: key, [strategy], [current], queue=False)
    return SettingsTab(empty, strategy, strategy_help, preset, name, validation, numbers, switches, memory,
                       yaml_view, command, current=current)


def wire(st: Studio) -> None:
    """Connect the settings to the model and data steps (called once every tab exists)."""
    tab, form = st.settings_tab, st.form
    custom = st.model_tab.custom
    strategy_inputs = {st.data, form.model_choice, custom, tab.current}
    custom_blur = [custom.blur] if isinstance(custom, gr.Textbox) else []
    # after new data, once the model list (and its choice) is the data's; or on another model
    for trigger in [st.model_tab.listed.then, form.model_choice.change, *custom_blur]:
        tab.listed.append(trigger(lambda got: _strategies(st, got), strategy_inputs, [tab.strategy, tab.empty]))
    listed = [event.then for event in tab.listed]
    for trigger in (tab.strategy.change, *listed):  # the same strategy reads differently for another task's data
        trigger(_strategy_help, [tab.strategy, st.data], [tab.strategy_help])
    outputs = [tab.yaml, tab.command, tab.memory, st.model_tab.memory]
    triggers = [tab.strategy.change, tab.preset.change, tab.name.blur, tab.validation.release, *listed,
                *(n.blur for n in tab.numbers.values()), *(s.change for s in tab.switches.values())]
    for trigger in triggers:
        trigger(lambda got: panel(st, got), form.inputs(), outputs)


def job_form(st: Studio) -> JobForm:
    """The widgets that describe a job, from the tabs that hold them."""
    tab = st.settings_tab
    return JobForm(data=st.data, model_choice=st.model_tab.choice, model_custom=st.model_tab.custom,
                   strategy=tab.strategy, preset=tab.preset, name=tab.name, validation=tab.validation,
                   numbers=tab.numbers, switches=tab.switches)


def _strategies(st: Studio, got: dict) -> dict:
    tab = st.settings_tab
    data = got.get(st.data)
    if not data:
        return {tab.strategy: gr.update(choices=[], value=None),
                tab.empty: gr.update(visible=True, value=notice("Load data and choose a model first.", "info"))}
    task = data["choice"].task
    entry = tab_model.model_entry(chosen_model(got.get(st.form.model_choice), got.get(st.model_tab.custom),
                                               st.public))
    # A catalog entry's own strategy list is for its own task (as the public policy reads it): a chat model tuned
    # on preference pairs takes the preference strategies, which a chat entry does not list.
    allowed = [k for k in strategies_for(task) if entry is None or entry.task != task or k in entry.strategies]
    if not allowed:
        return {tab.strategy: gr.update(choices=[], value=None),
                tab.empty: gr.update(visible=True, value=notice(f"No strategy trains {entry.title} for this task: "
                                                                "choose another model in step 2.", "error"))}
    default = get_task(task).default_strategy
    current = got.get(tab.current)
    value = current if current in allowed else (default if default in allowed else allowed[0])
    return {tab.strategy: gr.update(choices=[(get_strategy(k).title, k) for k in allowed], value=value),
            tab.empty: gr.update(visible=False)}


# The registry's words where a task reads them differently: (strategy, task kind) -> (what it trains, when).
HELP_FOR_KIND = {
    ("head-only", "regression"): (
        "a new one-number head (ridge regression) on frozen features",
        "The fastest: the model is frozen, its features are computed once, and only the head that turns them into "
        "your number trains (seconds on a CPU). Try it first."),
}


def _strategy_help(key: str | None, data: dict | None = None) -> str:
    if not key:
        return ""
    strategy = get_strategy(key)
    kind = get_task(data["choice"].task).kind if data and data["choice"].task else None
    trains, when = HELP_FOR_KIND.get((key, kind), (strategy.trains, strategy.when))
    return f"**{strategy.title}** trains {trains}. {when}"


def panel(st: Studio, got: dict) -> dict:
    """The YAML, command and memory estimate of the job the widgets describe, exactly as it will run."""
    tab = st.settings_tab
    try:
        plan = st.plan(st.form.values(got, st.public))
    except ConfigError as exc:
        message = notice(" ".join(exc.problems), "info")
        return {tab.yaml: "", tab.command: "", tab.memory: message, st.model_tab.memory: message}
    job = plan.config
    memory = _memory_html(st, job, plan) + _search_time_html(job, plan)
    if plan.problems:
        memory = notice(" ".join(plan.problems), "error", "Fix these settings:") + memory
    return {tab.yaml: job.to_yaml(), tab.command: command_for("config.yaml"), tab.memory: memory,
            st.model_tab.memory: memory}


def _search_time_html(job: JobConfig, plan) -> str:
    """For the automatic search, the time budget it will keep to, stated before Start (``search_budget_seconds``)."""
    try:
        searches = get_strategy(job.strategy).searches
    except KeyError:
        return ""
    train = getattr(plan.data, "train", None)
    if not searches or train is None:
        return ""
    rows, t = len(train), job.train
    budget = search_budget_seconds(t.preset, rows, t.max_minutes)
    others = ", ".join(f"{name} {search_budget_seconds(name, rows, t.max_minutes):.0f} s"
                       for name in SEARCH_BUDGET_S if name != t.preset)
    text = (f"The automatic search keeps to about {budget:.0f} s ({budget / 60:.1f} min) for your {rows} training "
            f"rows with the {t.preset} preset ({others}): the features of your rows first, then heads scored by "
            "cross-validation, then fine-tunes while time is left; what it could not try is listed on its "
            "leaderboard. Fitting the winner on every row and the report add a little after it.")
    return notice(text, "info", "Time:")


def _memory_html(st: Studio, job: JobConfig, plan) -> str:
    """The memory estimate the run will check (``core.memory.estimate_job``) when the model is at hand, else the
    catalog entry's shape."""
    entry = tab_model.model_entry(job.model)
    if entry is None and plan.model is None:
        return notice("No memory estimate for a typed model: its size is known once it is loaded.", "info")
    try:
        strategy = get_strategy(job.strategy)
    except KeyError:
        return ""
    t = job.train
    shape = side = None
    if plan.model is not None:  # the model is at hand: the shape and image side the run will check
        try:
            shape, side = model_shape(plan.model), image_side(job, plan.data, plan.model)
        except Exception:  # its files could not be read here
            shape = side = None
    if shape is None:  # not downloaded (or unreadable): the catalog entry's shape says as much before a download
        if entry is None:
            return notice("No memory estimate for this model: its files could not be read.", "info")
        shape = CATALOG_SHAPES.get(entry.key) or ModelShape.guess(entry.params_m)
    estimate = estimate_config(job, shape, st.hardware, side)
    title = entry.title if entry is not None else job.model
    parts = ", ".join(f"{k} {v:.2f} GB" for k, v in estimate.breakdown.items())
    verdict = "fits" if estimate.fits else "does not fit"
    length = f", length {t.max_length}" if t.max_length else ""
    text = (f"{title} with {strategy.title}, batch {t.batch_size}{length}: about "
            f"{estimate.total_gb:.1f} GB of {estimate.available_gb:.1f} GB available ({parts}). {estimate.advice}")
    return notice(text, "ok" if estimate.fits else "error", f"Memory: {verdict} on this machine.")
