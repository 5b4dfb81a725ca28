"""Playground inference: chat streaming and classification for base and tuned models."""
