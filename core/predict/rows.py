"""The model's columns for a chunk of rows: a classifier's label, confidence and top 3, a regressor's number, or
a chat model's answer.

Both yield finished chunks in the input's order. The classifier gathers the items of several chunks into batches
of ``step`` counted from the first item of the file, which is how ``studio eval`` batches a split, so a clean
labelled file gets exactly eval's numbers.
"""
from __future__ import annotations

import threading
from typing import Iterable, Iterator

import numpy as np
import pandas as pd

from .accuracy import Scores

TOP = 3


def _cell_text(value) -> str:
    """A cell as the data module cleans text for training: as text, stripped, missing-value markers emptied."""
    from ..data.text import MISSING_MARKERS, value_text

    text = value_text(value).strip()
    return "" if text in MISSING_MARKERS else text


class ClassifierRows:
    """``predicted_label``, ``confidence``, ``top_3`` and ``problem`` for every row of a classifier's input.

    Args:
        run_dir: the run.
        home: the studio home.
        task: text-classification | image-classification.
        roles: role -> the file's column (``text``; ``label`` when the file has the true labels).
        step: items per model call.
    """

    columns = ["predicted_label", "confidence", "top_3", "problem"]
    regression = False

    def __init__(self, run_dir, home, task: str, roles: dict, step: int) -> None:
        from ..inference.classify import Classifier

        self.classifier = Classifier.from_run(run_dir, home)
        self.task, self.roles, self.step = task, roles, step
        self.scores = Scores(task) if "label" in roles else None
        self.predicted = 0

    def run(self, chunks: Iterable[pd.DataFrame], stop: threading.Event, clock) -> Iterator[pd.DataFrame]:
        frames: list[dict] = []
        waiting: list[tuple[dict, int, object]] = []  # (frame, row, item) not predicted yet
        for chunk in chunks:
            frame = self._frame(chunk)
            frames.append(frame)
            waiting += [(frame, i, item) for i, item in enumerate(frame["items"]) if item is not None]
            while len(waiting) >= self.step:
                if stop.is_set():
                    return
                self._predict(waiting[:self.step])
                waiting = waiting[self.step:]
                yield from self._finished(frames, waiting, clock)
        if waiting and not stop.is_set():
            self._predict(waiting)
            waiting = []
        if not stop.is_set():
            yield from self._finished(frames, waiting, clock)

    def _frame(self, chunk: pd.DataFrame) -> dict:
        n = len(chunk)
        problems = [""] * n
        if "_path" in chunk:  # images
            items = list(chunk["_path"])
        else:
            items = [_cell_text(v) or None for v in chunk[self.roles["text"]].tolist()]
            problems = ["" if item else "empty text" for item in items]
        return {"chunk": chunk.drop(columns=["_path"], errors="ignore"), "items": items, "problems": problems,
                "probs": [None] * n}

    def _predict(self, batch: list[tuple[dict, int, object]]) -> None:
        items = [item for _, _, item in batch]
        try:
            probs = list(self.classifier.predict_batch(items))
        except Exception:  # one unreadable image must not cost the batch: find it, keep the rest
            probs = [self._one(frame, i, item) for frame, i, item in batch]
        for (frame, i, item), p in zip(batch, probs):
            frame["probs"][i] = p
        if self.scores is not None:
            kept = [(item, p) for (_, _, item), p in zip(batch, probs) if p is not None]
            if kept:
                self.scores.keep([i for i, _ in kept], np.stack([p for _, p in kept]))

    def _one(self, frame: dict, i: int, item):
        try:
            return self.classifier.predict_batch([item])[0]
        except Exception as exc:
            frame["problems"][i] = f"could not be read: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}"
            return None

    def _finished(self, frames: list[dict], waiting: list, clock) -> Iterator[pd.DataFrame]:
        """Every frame before the first one still waiting for predictions, with its model columns."""
        open_frame = waiting[0][0] if waiting else None
        while frames and frames[0] is not open_frame:
            frame = frames.pop(0)
            yield self._columns(frame)
            clock.tick(clock.rows)  # the writer has counted the chunk by the time the generator resumes

    def _columns(self, frame: dict) -> pd.DataFrame:
        labels = self.classifier.labels
        predicted, confidence, top = [], [], []
        for p in frame["probs"]:
            if p is None:
                predicted.append("")
                confidence.append(None)
                top.append("")
                continue
            self.predicted += 1
            order = np.argsort(-p, kind="stable")[:TOP]
            predicted.append(labels[order[0]])
            confidence.append(round(float(p[order[0]]), 4))
            top.append("; ".join(f"{labels[k]} ({float(p[k]):.2f})" for k in order))
        return frame["chunk"].assign(predicted_label=predicted, confidence=confidence, top_3=top,
                                     problem=frame["problems"])


class RegressorRows(ClassifierRows):
    """``predicted_value`` and ``problem`` for every row (or image) of a regressor's input.

    Args:
        run_dir, home, task, roles, step: as ``ClassifierRows`` (the true values' role is ``target``).
        root: for images, the folder predicted; a ``metadata.csv`` there gives the true values to score.
    """

    columns = ["predicted_value", "problem"]
    regression = True

    def __init__(self, run_dir, home, task: str, roles: dict, step: int, root=None) -> None:
        from ..data.regression import find_metadata
        from ..inference.regress import Regressor

        self.classifier = Regressor.from_run(run_dir, home)
        self.task, self.roles, self.step = task, roles, step
        truth = "target" in roles or (root is not None and bool(find_metadata(root)[0]))
        self.scores = Scores(task) if truth else None
        self.predicted = 0

    def _columns(self, frame: dict) -> pd.DataFrame:
        values = []
        for value in frame["probs"]:
            self.predicted += value is not None
            values.append(None if value is None else float(f"{float(value):.6g}"))
        return frame["chunk"].assign(predicted_value=values, problem=frame["problems"])


class ChatRows:
    """An ``answer`` (and a ``problem`` when a row has no prompt) for every row of a chat model's input.

    Args:
        run_dir: the run.
        home: the studio home.
        roles: role -> the file's column (``prompt`` [+ ``input``, ``system``] or ``messages`` [+ ``system``]).
        max_new_tokens: the answers' length limit.
        temperature: 0 for greedy answers.
    """

    columns = ["answer", "problem"]
    scores = None
    classifier = None

    def __init__(self, run_dir, home, roles: dict, max_new_tokens: int, temperature: float) -> None:
        from ..inference.chat import ChatModel

        self.model = ChatModel.from_run(run_dir, home)
        self.roles, self.max_new_tokens, self.temperature = roles, max_new_tokens, temperature
        self.predicted = 0

    def run(self, chunks: Iterable[pd.DataFrame], stop: threading.Event, clock) -> Iterator[pd.DataFrame]:
        for chunk in chunks:
            answers, problems = [], []
            for _, row in chunk.iterrows():
                messages, problem = self.messages(row)
                answer = self._answer(messages, stop) if messages else ""
                if stop.is_set():
                    break  # this row's answer is cut short: the file keeps the rows before it
                answers.append(answer)
                problems.append(problem)
                self.predicted += bool(messages)
                clock.tick(clock.rows + len(answers))
            if answers:
                yield chunk.iloc[:len(answers)].assign(answer=answers, problem=problems)
            if stop.is_set():
                return

    def messages(self, row) -> tuple[list[dict] | None, str]:
        """The conversation to answer for one row, or None and why there is none."""
        from ..data.chat import parse_conversation

        system = _cell_text(row[self.roles["system"]]) if "system" in self.roles else ""
        if "messages" in self.roles:
            turns, why = parse_conversation(row[self.roles["messages"]])
            while turns and turns[-1]["role"] == "assistant":
                turns = turns[:-1]  # the reference answer: the model writes its own
            if not turns or turns[-1]["role"] != "user":
                return None, f"no user turn to answer ({why})" if why else "no user turn to answer"
        else:
            prompt = _cell_text(row[self.roles["prompt"]])
            extra = _cell_text(row[self.roles["input"]]) if "input" in self.roles else ""
            text = f"{prompt}\n\n{extra}" if prompt and extra else prompt or extra
            if not text:
                return None, "empty prompt"
            turns = [{"role": "user", "content": text}]
        if system and turns[0]["role"] != "system":
            turns = [{"role": "system", "content": system}] + turns
        return turns, ""

    def _answer(self, messages: list[dict], stop: threading.Event) -> str:
        answer = ""
        for answer in self.model.stream(messages, max_new_tokens=self.max_new_tokens, temperature=self.temperature):
            if stop.is_set():
                break
        return answer.strip()
