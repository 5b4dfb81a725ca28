# The two commands: `make studio` (install everything, start on http://127.0.0.1:7860) and `make test`.
PY := .venv/bin/python

.PHONY: studio test install install-test chromium bench

studio: install
	$(PY) -m core.cli ui

test: install-test chromium
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -rs

install:
	./scripts/setup.sh

install-test:
	./scripts/setup.sh test

# Browser tests drive Debian's Chromium; install it when missing and we may (root, apt-get present).
chromium:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi

bench: install
	$(PY) -m bench
