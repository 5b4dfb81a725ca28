"""The home's secrets: made once, private to the user, the same after a restart (the page's stored session is
encrypted with one, so a restarted studio must still read it)."""
from __future__ import annotations

import stat
import threading

from core.home import Home


def test_a_secret_is_made_once_kept_private_and_read_back_by_a_new_studio(tmp_path):
    first = Home.resolve(tmp_path / "home").secret("browser-state")
    again = Home.resolve(tmp_path / "home").secret("browser-state")  # a studio started later on the same home
    assert first == again and len(first) >= 24
    path = tmp_path / "home" / "secrets" / "browser-state"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Home.resolve(tmp_path / "other").secret("browser-state") != first
    assert [p.name for p in path.parent.iterdir()] == ["browser-state"]  # no partial file left


def test_two_studios_making_the_secret_at_once_agree(tmp_path):
    home, keys = Home.resolve(tmp_path / "home"), []
    threads = [threading.Thread(target=lambda: keys.append(home.secret("k"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1
