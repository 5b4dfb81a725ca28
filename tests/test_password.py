"""A password for a shared machine: served beyond localhost with ``$STUDIO_PASSWORD`` (or ``studio ui
--password``), the real server asks for it before the page or its API; on 0.0.0.0 without one it warns."""
from __future__ import annotations

import asyncio
import http.cookiejar
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from core import access
from core.access import beyond_this_machine, decide_access, password_check
from tests.conftest import REPO


@pytest.mark.parametrize("host, beyond", [("127.0.0.1", False), ("localhost", False), ("::1", False),
                                          ("127.0.1.1", False), ("0.0.0.0", True), ("192.168.1.20", True),
                                          ("::", True), ("studio.example.org", True)])
def test_which_addresses_reach_beyond_this_machine(host, beyond):
    assert beyond_this_machine(host) is beyond


def test_the_login_is_asked_only_beyond_this_machine_and_a_missing_one_is_warned_about():
    assert decide_access("0.0.0.0", "s3cret", public=False).auth is not None
    local = decide_access("127.0.0.1", "s3cret", public=False)
    assert local.auth is None and "not asked" in local.warning
    exposed = decide_access("0.0.0.0", None, public=False)
    assert exposed.auth is None and exposed.warning.startswith("Warning: the studio is served on 0.0.0.0 without")
    assert decide_access("0.0.0.0", None, public=True) == access.Access(None, None)  # a public demo stays as it is
    assert decide_access("127.0.0.1", None, public=False) == access.Access(None, None)


def test_the_password_check_takes_any_name_and_only_the_password(monkeypatch):
    monkeypatch.setattr(access, "FAILED_LOGIN_DELAY_S", 0.0)
    check = password_check("s3cret")
    assert asyncio.run(check("anyone", "s3cret")) and asyncio.run(check("", "s3cret"))
    assert not asyncio.run(check("admin", "S3cret")) and not asyncio.run(check("admin", ""))


def test_studio_ui_password_reaches_the_server(monkeypatch, home):
    import studio.app
    from core.cli import main

    seen = {}
    monkeypatch.setattr(studio.app, "launch", lambda home, **kwargs: seen.update(kwargs))
    assert main(["ui", "--host", "0.0.0.0", "--password=s3cret", "--home", str(home.root)]) == 0
    assert seen["password"] == "s3cret" and seen["host"] == "0.0.0.0"
    monkeypatch.setattr("getpass.getpass", lambda prompt: "typed")
    assert main(["ui", "--password", "--home", str(home.root)]) == 0 and seen["password"] == "typed"


def test_the_served_studio_asks_for_the_password(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "STUDIO_PASSWORD": "s3cret", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "studio", "--home", str(tmp_path / "home"), "--host", "0.0.0.0",
                               "--port", str(port)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(base + "/", server)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + "/config", timeout=10)
        assert refused.value.code == 401  # the page's description (and so the page) needs the login
        with pytest.raises(urllib.error.HTTPError) as wrong:
            _login(base, "guess")
        assert wrong.value.code == 400
        opener = _login(base, "s3cret")
        with opener.open(base + "/config", timeout=10) as page:
            assert page.status == 200 and b"components" in page.read()
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    assert "without a password" not in (tmp_path / "server.log").read_text()


def _login(base: str, password: str):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = urllib.parse.urlencode({"username": "someone", "password": password}).encode()
    opener.open(base + "/login", data=form, timeout=10).close()
    return opener


def _wait_up(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, f"the studio exited with code {proc.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers (the login page or a refusal)
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"the studio did not answer at {url}")
