"""Data in: read a user's file, detect the task and columns, check it, split it, summarise it.

The one entry point is ``load_data``; it never raises for problems in the data, which come back on
``PreparedData.report`` as ``Problem`` objects with a message and a fix. ``understood_lines`` says in plain
lines what was understood (task, columns, classes, merges, rows left out, every problem), for printing before
training. Nothing is ever written beside the user's files: zips are unpacked into the studio home.
"""
from .examples import EXAMPLES, Example, example_path
from .images import open_rgb
from .limits import DataLimits
from .loader import inspect_columns, load_data, unpack_folder
from .overview import understood_lines
from .prepared import PreparedData
from .report import DataError, DataReport, Problem

__all__ = [
    "EXAMPLES", "DataError", "DataLimits", "DataReport", "Example", "PreparedData", "Problem",
    "example_path", "inspect_columns", "load_data", "open_rgb", "understood_lines", "unpack_folder",
]
