"""Batch prediction: a run's tuned model over a whole file (``studio predict``, the Evaluate tab's panel).

``predict_file`` streams the file through the model and writes the input columns plus the model's; see
``core.predict.batch``. ``default_output`` is where the page puts the result (the studio home).
"""
from .batch import PredictResult, default_output, predict_file
from .source import PredictError

__all__ = ["PredictError", "PredictResult", "default_output", "predict_file"]
