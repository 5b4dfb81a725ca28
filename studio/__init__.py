"""The studio's Gradio UI. Training logic lives in ``core``; this package only shows it and collects settings."""
import os

# A local studio sends nothing home: no usage analytics (and no waiting on an unreachable server offline).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
