"""An API for a tuned model, so other programs can call it: OpenAI-compatible for chat runs (existing OpenAI
clients work with only a different base URL), ``/v1/classify`` for classifiers.

``serve`` runs it in the foreground (``studio serve``); ``start_server`` runs it in a background thread and
returns a handle with its URL and ``stop()`` (for the page, or a notebook).

    curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
        -d '{"model": "RUN", "messages": [{"role": "user", "content": "Hello"}]}'

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")
    client.chat.completions.create(model="RUN", messages=[{"role": "user", "content": "Hello"}])
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .app import create_app

__all__ = ["ServerHandle", "create_app", "serve", "start_server"]


def serve(run_dir: Path, home, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
          progress: Callable[[str], None] | None = None) -> None:
    """Load the run's model and answer requests until interrupted (Ctrl-C).

    Args:
        run_dir: a finished chat or classifier run.
        home: the studio home.
        host: the address to listen on (127.0.0.1: this machine only; 0.0.0.0: the network, use ``api_key``).
        port: the port.
        api_key: require ``Authorization: Bearer <api_key>`` on every /v1 request.
        progress: called with a sentence when the model is loaded and the server listens.
    """
    import uvicorn

    say = progress or (lambda message: None)
    say("Loading the model.")
    app = create_app(run_dir, home, api_key)
    served = app.state.served
    say(f"Serving {served.name} ({served.task}) on http://{host}:{port}/v1 - Ctrl-C stops.")
    uvicorn.run(app, host=host, port=port, log_level="warning")


@dataclass
class ServerHandle:
    """A server running in a background thread.

    Attributes:
        url: the API's base URL (``http://host:port/v1``).
        model: the served model's name (the run's name).
        task: chat | text-classification | image-classification.
    """

    url: str
    model: str
    task: str
    _server: object
    _thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        """Stop answering and free the port."""
        self._server.should_exit = True
        self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()


def start_server(run_dir: Path, home, host: str = "127.0.0.1", port: int | None = None,
                 api_key: str | None = None, progress: Callable[[str], None] | None = None,
                 timeout: float = 30.0) -> ServerHandle:
    """Serve the run's model from a background thread; returns once it accepts connections.

    Args:
        run_dir: a finished chat or classifier run.
        home: the studio home.
        host: the address to listen on.
        port: the port; a free one when None.
        api_key: require ``Authorization: Bearer <api_key>`` on /v1 requests.
        progress: called with a sentence per step (loading, listening).
        timeout: seconds to wait for the server to listen.
    """
    import uvicorn

    say = progress or (lambda message: None)
    say("Loading the model.")
    app = create_app(run_dir, home, api_key)
    port = port or _free_port(host)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"api-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"The API server did not start on {host}:{port} (is the port taken?).")
        time.sleep(0.05)
    served = app.state.served
    handle = ServerHandle(f"http://{host}:{port}/v1", served.name, served.task, server, thread)
    say(f"Serving {served.name} on {handle.url}.")
    return handle


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
