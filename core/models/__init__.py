"""Models: finding a model's weights (local folder, caches, packaged copies, the hub), loading them for a task,
and the pieces built on a loaded model that training and inference share (frozen encoders, heads, classifiers).

The public names below are the ones the rest of the studio uses; each lives in the module named beside it.
"""
from .base import ModelUnavailable, ResolvedModel  # noqa: F401
from .loaders import (load_causal_lm, load_image_classifier, load_text_classifier,  # noqa: F401
                      load_tokenizer, parameter_count)
from .packaged import convert_smollm2  # noqa: F401
from .resolve import model_status, resolve_model  # noqa: F401

__all__ = ["ModelUnavailable", "ResolvedModel", "convert_smollm2", "load_causal_lm", "load_image_classifier",
           "load_text_classifier", "load_tokenizer", "model_status", "parameter_count", "resolve_model"]
