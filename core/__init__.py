"""The studio's engine: data, model catalog, strategies, training, jobs and inference.

Nothing in this package imports gradio; the UI lives in ``studio/``.
"""
