"""``python -m studio [--home DIR] [--host H] [--port N] [--public]``: start the studio UI."""
from __future__ import annotations

import argparse
import logging

from core.home import Home

from .app import launch


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m studio", description="Start the fine-tuning studio UI.")
    parser.add_argument("--home", help="studio home folder (default: $STUDIO_HOME or ~/.finetune-studio)")
    parser.add_argument("--host", help="interface to bind (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: $PORT or 7860)")
    parser.add_argument("--public", action="store_true", help="shared demo mode: stricter limits")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    launch(Home.resolve(args.home), host=args.host, port=args.port, public=args.public)


if __name__ == "__main__":
    main()
