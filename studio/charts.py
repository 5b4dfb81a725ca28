"""Plotly figures built from run events and data summaries. Pure functions: no gradio, no state."""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import plotly.graph_objects as go

HEIGHT = 300
PALETTE = ("#4f46e5", "#0ea5e9", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#ec4899", "#64748b")


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = HEIGHT) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.02, "font": {"size": 15}}, height=height, template="plotly_white",
        margin={"l": 50, "r": 16, "t": 44, "b": 42}, xaxis_title=x, yaxis_title=y,
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
    )
    return fig


def empty_figure(title: str, hint: str) -> go.Figure:
    """A blank chart that says why it is blank, instead of an empty grid."""
    fig = go.Figure()
    fig.add_annotation(text=_wrapped(hint, 44), showarrow=False, font={"size": 13, "color": "#64748b"},
                       xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, "", "")


def _wrapped(text: str, width: int, lines: int | None = None) -> str:
    """``text`` broken into lines of at most ``width`` characters for plotly (which never wraps), at most
    ``lines`` of them, the last ending in an ellipsis when cut."""
    import textwrap

    parts = textwrap.wrap(text, width, break_on_hyphens=False) or [""]
    if lines is not None and len(parts) > lines:
        parts = parts[:lines]
        parts[-1] = parts[-1][:width - 1].rstrip() + "…"
    return "<br>".join(parts)


def ema(values: Sequence[float], alpha: float = 0.2) -> list[float]:
    """Exponential moving average, debiased so the first points are not pulled towards zero."""
    out, avg, weight = [], 0.0, 0.0
    for v in values:
        avg = (1 - alpha) * avg + alpha * v
        weight = (1 - alpha) * weight + alpha
        out.append(avg / weight)
    return out


def _points(events: Iterable[dict[str, Any]], kind: str, key: str) -> tuple[list, list]:
    xs, ys = [], []
    for e in events:
        if e.get("type") == kind and isinstance(e.get(key), (int, float)):
            xs.append(e.get("step", len(xs)))
            ys.append(float(e[key]))
    return xs, ys


def loss_figure(events: list[dict[str, Any]]) -> go.Figure:
    """The training loss (raw and smoothed) with the evaluation loss; an automatic search without a fine-tune says
    why there is no curve."""
    if not _points(events, "train", "loss")[0] and any(e.get("type") == "search" for e in events):
        return empty_figure("Training loss", "No curve: the search scores each candidate (its scores are beside "
                                             "this); a fine-tune that wins draws its curve here as it trains again.")
    return _loss_figure(events)


def _loss_figure(events: list[dict[str, Any]]) -> go.Figure:
    """Training loss, raw (faint) and smoothed, with the eval loss when there is one."""
    xs, ys = _points(events, "train", "loss")
    if not xs:
        return empty_figure("Training loss", "The curve appears after the first logged steps.")
    fig = go.Figure()
    fig.add_scatter(x=xs, y=ys, mode="lines+markers" if len(xs) < 30 else "lines", name="loss",
                    line={"color": PALETTE[0], "width": 1}, opacity=0.35, marker={"size": 4})
    fig.add_scatter(x=xs, y=ema(ys), mode="lines", name="smoothed", line={"color": PALETTE[0], "width": 2.5})
    ex, ey = _points(events, "eval", "eval_loss")
    if ex:
        fig.add_scatter(x=ex, y=ey, mode="lines+markers", name="eval loss", line={"color": PALETTE[2], "width": 2})
    return _layout(fig, "Training loss", "step", "loss")


def penalty_figure(events: list[dict[str, Any]]) -> go.Figure:
    """A ridge head's search for its penalty: the cross-validated error (RMSE over the target's spread; 1 is as
    good as the mean) of each L2 penalty tried, read from the run's "train" points (``learning_rate`` holds the
    penalty there)."""
    points = [(float(e["learning_rate"]), float(e["loss"])) for e in events if e.get("type") == "train"
              and isinstance(e.get("learning_rate"), (int, float)) and isinstance(e.get("loss"), (int, float))
              and e["learning_rate"] > 0]
    if not points:
        return empty_figure("Ridge penalty", "Each penalty's cross-validated error appears as it is scored.")
    points.sort()
    fig = go.Figure(go.Scatter(x=[p for p, _ in points], y=[v for _, v in points], mode="lines+markers",
                               name="cross-validated", line={"color": PALETTE[0]},
                               hovertemplate="L2 %{x:g}: %{y:.3f}<extra></extra>"))
    fig.update_xaxes(type="log")
    return _layout(fig, "Ridge penalty: cross-validated error", "L2 penalty", "RMSE / spread of the target")


def candidates_figure(events: list[dict[str, Any]]) -> go.Figure | None:
    """The automatic search's candidates so far, by cross-validated accuracy, or mean absolute error for a
    regression (None when the run has no search)."""
    candidates = [e for e in events if e.get("type") == "candidate"]
    key = next((k for k in ("cv_accuracy", "cv_mae") if any(isinstance(e.get(k), (int, float)) for e in candidates)),
               None)
    if key is None:
        return None
    accuracy = key == "cv_accuracy"
    scored = sorted((e for e in candidates if isinstance(e.get(key), (int, float))), key=lambda e: e[key],
                    reverse=not accuracy)[-12:]  # the best at the top: the highest accuracy, the lowest error
    # the kept candidate (chosen by calibrated log-loss or on held-out rows, so not always the longest bar) starred
    winner = next((e.get("name") for e in reversed(events) if e.get("type") == "winner"), None)
    names = [_wrapped(("★ " if e.get("name") == winner else "") + str(e.get("name", "?")), 30, lines=2)
             for e in scored]  # narrow labels leave room for the bars
    shown = [f"{e[key]:.1%}" if accuracy else f"{e[key]:.4g}" for e in scored]
    colours = [PALETTE[0] if e.get("name") == winner else PALETTE[3] for e in scored]
    fig = go.Figure(go.Bar(x=[e[key] for e in scored], y=names, orientation="h", marker_color=colours,
                           text=shown, textposition="auto", customdata=[str(e.get("name", "?")) for e in scored],
                           hovertemplate="%{customdata}: %{x:.1%}<extra></extra>" if accuracy else
                           "%{customdata}: MAE %{x:.4g}<extra></extra>"))
    if accuracy:
        fig.update_xaxes(range=[0, 1.02], tickformat=".0%")
        fig = _layout(fig, "Candidates tried (cross-validated accuracy)", "accuracy", "")
    else:
        fig = _layout(fig, "Candidates tried (cross-validated MAE, lower is better)", "mean absolute error", "")
    # two-line names need about 28 px a bar: past seven candidates the chart grows rather than overlap them
    fig.update_layout(margin={"l": 16, "r": 16, "t": 44, "b": 42}, showlegend=False,
                      height=max(HEIGHT, 90 + 28 * len(scored)))
    fig.update_yaxes(automargin=True)
    return fig


# What the validation chart draws, by the metrics a run's eval events carry: the first family found wins.
EVAL_FAMILIES = (
    ("Validation accuracy", "score", (("accuracy", "accuracy"), ("macro_f1", "macro F1")), (0, 1.02)),
    ("Validation error (lower is better)", "error", (("mae", "MAE"), ("rmse", "RMSE")), None),
    ("Held-out pairs ordered right", "share", (("reward_accuracy", "chosen preferred"),), (0, 1.02)),
)


def perplexity_figure(events: list[dict[str, Any]]) -> go.Figure:
    """Perplexity on the held-out text (exp of the eval loss), for training on documents: its headline metric."""
    import math

    xs, ys = _points(events, "eval", "eval_loss")
    if not xs:
        return empty_figure("Held-out perplexity", "Evaluation points appear after the first evaluation.")
    fig = go.Figure(go.Scatter(x=xs, y=[math.exp(min(y, 50.0)) for y in ys], mode="lines+markers",
                               name="perplexity", line={"color": PALETTE[2]}))
    return _layout(fig, "Held-out perplexity (lower is better)", "step", "perplexity")


def eval_figure(events: list[dict[str, Any]]) -> go.Figure:
    """Accuracy and macro F1 for classifiers, MAE and RMSE for regressions, the share of held-out pairs whose chosen
    answer the model prefers for preference tuning, eval loss otherwise: whichever the run reports; for an automatic
    search, the candidates it has scored so far."""
    candidates = candidates_figure(events)
    if candidates is not None and not any(e.get("type") == "eval" for e in events):
        return candidates
    for title, axis, keys, bounds in EVAL_FAMILIES:
        fig = go.Figure()
        for i, (key, name) in enumerate(keys):
            xs, ys = _points(events, "eval", key)
            if xs:
                fig.add_scatter(x=xs, y=ys, mode="lines+markers", name=name, line={"color": PALETTE[3 + i]})
        if fig.data:
            if bounds:
                fig.update_yaxes(range=list(bounds))
            return _layout(fig, title, "step", axis)
    fig = go.Figure()
    xs, ys = _points(events, "eval", "eval_loss")
    if not xs:
        return empty_figure("Validation", "Evaluation points appear after the first evaluation.")
    fig.add_scatter(x=xs, y=ys, mode="lines+markers", name="eval loss", line={"color": PALETTE[2]})
    return _layout(fig, "Validation loss", "step", "loss")


def lr_figure(events: list[dict[str, Any]]) -> go.Figure:
    xs, ys = _points(events, "train", "learning_rate")
    if not xs and any(e.get("type") == "search" for e in events):
        return empty_figure("Learning rate", "Heads fitted on the frozen features have no schedule; a fine-tune that "
                                             "wins draws its schedule here as it trains again.")
    if not xs:
        return empty_figure("Learning rate", "The schedule appears with the first steps.")
    fig = go.Figure(go.Scatter(x=xs, y=ys, mode="lines", name="learning rate", line={"color": PALETTE[1]}))
    fig.update_yaxes(exponentformat="e")
    return _layout(fig, "Learning rate", "step", "lr")


def class_balance_figure(counts: dict[str, int], validation: dict[str, int] | None = None) -> go.Figure:
    """Rows per class, largest first, training and validation stacked (so the totals are the counts the data
    checks give); a skew shows at a glance."""
    if not counts:
        return empty_figure("Class balance", "No classes: this task has no labels.")
    validation = {k: v for k, v in (validation or {}).items() if v}
    total = {k: counts.get(k, 0) + validation.get(k, 0) for k in set(counts) | set(validation)}
    names = sorted(total, key=lambda k: (-total[k], str(k)))
    parts = [("training", counts, PALETTE[0])] + ([("validation", validation, PALETTE[2])] if validation else [])
    fig = go.Figure([go.Bar(x=[str(k) for k in names], y=[part.get(k, 0) for k in names], name=name,
                            marker_color=colour, hovertemplate=f"%{{x}}: %{{y}} {name} rows<extra></extra>")
                     for name, part, colour in parts])
    fig.add_trace(go.Scatter(x=[str(k) for k in names], y=[total[k] for k in names], mode="text",
                             text=[total[k] for k in names], textposition="top center", showlegend=False,
                             hoverinfo="skip", cliponaxis=False))  # each class's total above its bar
    fig.update_layout(barmode="stack", showlegend=bool(validation), legend_traceorder="normal")
    fig.update_yaxes(range=[0, max(total.values()) * 1.18])  # room above the tallest bar for its count
    return _layout(fig, "Class balance", "class", "rows")


def token_length_figure(stats: dict | None, max_length: int | None = None) -> go.Figure:
    """Histogram of example lengths in tokens (from the data summary's bins), with the cut-off marked.

    Args:
        stats: ``{"histogram": {"edges": [...], "counts": [...]}, "p95": ..., "sampled": bool}``.
        max_length: where rows will be truncated, if known.
    """
    hist = (stats or {}).get("histogram") or {}
    edges, counts = hist.get("edges") or [], hist.get("counts") or []
    if not counts or len(edges) != len(counts) + 1:
        return empty_figure("Length in tokens", "Token lengths appear once the data is read with a tokenizer.")
    centres = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
    widths = [max(b - a, 0.5) for a, b in zip(edges[:-1], edges[1:])]
    fig = go.Figure(go.Bar(x=centres, y=counts, width=widths, marker_color=PALETTE[1], name="examples",
                           hovertemplate="%{x:.0f} tokens: %{y} examples<extra></extra>"))
    if max_length:
        fig.add_vline(x=max_length, line={"color": PALETTE[4], "dash": "dash"},
                      annotation_text=f"cut at {max_length}", annotation_position="top right")
    title = "Length in tokens" + (" (from a sample)" if stats.get("sampled") else "")
    return _layout(fig, title, "tokens per example", "examples")


def confusion_figure(matrix: Sequence[Sequence[int]], labels: Sequence[str]) -> go.Figure:
    """Rows are true classes, columns predicted ones; the diagonal is what the model gets right."""
    if not matrix or not labels:
        return empty_figure("Confusion matrix", "No confusion matrix for this run.")
    names = [str(x) for x in labels]
    fig = go.Figure(go.Heatmap(z=[list(r) for r in matrix], x=names, y=names, colorscale="Blues",
                               texttemplate="%{z}", hovertemplate="true %{y}<br>predicted %{x}<br>%{z}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    size = max(HEIGHT, 40 * len(names) + 120)
    return _layout(fig, "Confusion matrix (tuned model)", "predicted", "true", height=min(size, 700))


def overlay_figure(curves: dict[str, list[dict[str, Any]]]) -> go.Figure:
    """Smoothed training loss of several runs on one chart, one colour each."""
    fig = go.Figure()
    for i, (name, events) in enumerate(curves.items()):
        xs, ys = _points(events, "train", "loss")
        if xs:
            fig.add_scatter(x=xs, y=ema(ys), mode="lines", name=name, line={"color": PALETTE[i % len(PALETTE)]})
    if not fig.data:
        return empty_figure("Compare runs", "Pick runs that logged training steps to overlay their loss curves.")
    return _layout(fig, "Training loss (smoothed) by run", "step", "loss", height=360)


def target_figure(target: dict | None) -> go.Figure:
    """Histogram of the number to predict on the training rows (from the data summary's ``target``)."""
    hist = (target or {}).get("histogram") or {}
    edges, counts = hist.get("edges") or [], hist.get("counts") or []
    if not counts or len(edges) != len(counts) + 1:
        return empty_figure("The number to predict", "No numbers were read.")
    centres = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
    widths = [max(b - a, 1e-9) * 0.95 for a, b in zip(edges[:-1], edges[1:])]
    name = str(target.get("column") or "target")
    fig = go.Figure(go.Bar(x=centres, y=counts, width=widths, marker_color=PALETTE[0], name="rows",
                           hovertemplate="%{x:.4g}: %{y} rows<extra></extra>"))
    if isinstance(target.get("mean"), (int, float)):
        fig.add_vline(x=target["mean"], line={"color": PALETTE[4], "dash": "dash"},
                      annotation_text=f"mean {target['mean']:.3g}", annotation_position="top right")
    return _layout(fig, f"'{name}' on the training rows", name, "rows")


def documents_figure(frame) -> go.Figure:
    """Words per document, coloured by whether it is trained on or held out to measure perplexity.

    Args:
        frame: the data preview of a documents task (``document``, ``words``, ``split`` columns).
    """
    if frame is None or not {"document", "words", "split"} <= set(frame.columns) or not len(frame):
        return empty_figure("Documents", "No documents were read.")
    fig = go.Figure()
    for i, (split, name) in enumerate((("train", "trained on"), ("validation", "held out (perplexity)"))):
        part = frame[frame["split"] == split]
        if len(part):
            fig.add_bar(x=[str(d)[:32] for d in part["document"]], y=list(part["words"]), name=name,
                        marker_color=PALETTE[0 if i == 0 else 2])
    return _layout(fig, "Words per document", "", "words")


def scatter_figure(points: dict | None, target: str = "value") -> go.Figure:
    """Predicted against true values of the validation rows, with the line a perfect model would sit on.

    Args:
        points: ``{"true": [...], "predicted": [...]}`` (eval.json's ``points``).
        target: the name of the number, for the axes.
    """
    true, predicted = list((points or {}).get("true") or []), list((points or {}).get("predicted") or [])
    if not true or len(true) != len(predicted):
        return empty_figure("Predicted against true", "This run's evaluation has no predictions to plot.")
    low, high = min(true + predicted), max(true + predicted)
    pad = (high - low) * 0.04 or 0.5
    fig = go.Figure()
    fig.add_scatter(x=[low - pad, high + pad], y=[low - pad, high + pad], mode="lines", name="perfect",
                    line={"color": "#94a3b8", "dash": "dash"}, hoverinfo="skip")
    fig.add_scatter(x=true, y=predicted, mode="markers", name="validation rows",
                    marker={"color": PALETTE[0], "size": 6, "opacity": 0.6},
                    hovertemplate="true %{x:.4g}<br>predicted %{y:.4g}<extra></extra>")
    fig.update_xaxes(range=[low - pad, high + pad])
    fig.update_yaxes(range=[low - pad, high + pad])  # the same range on both: the dashed line is the diagonal
    fig = _layout(fig, f"Predicted against true {target} (tuned model, validation rows)", f"true {target}",
                  f"predicted {target}", height=420)
    fig.update_layout(legend={"orientation": "v", "x": 0.01, "y": 0.99, "xanchor": "left", "yanchor": "top",
                              "bgcolor": "rgba(255,255,255,0.7)"})
    return fig
