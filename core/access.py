"""Who may reach the studio: a password when it is served beyond this machine.

On 127.0.0.1 only this machine can open the page. Served on 0.0.0.0 (or any other address) everyone who can reach
the port can train, read uploads and download models, so a password (``studio ui --password`` or
``$STUDIO_PASSWORD``) puts the page and its API behind Gradio's login, and serving there without one prints a
warning. Public demo mode (``--public``, a Space) is meant for strangers and keeps its own caps instead.
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
from dataclasses import dataclass
from typing import Awaitable, Callable

FAILED_LOGIN_DELAY_S = 1.0  # a wrong password waits a second: guessing stays slow, the server stays free
LOGIN_MESSAGE = "This studio is password-protected: enter any name and the studio's password."


@dataclass(frozen=True)
class Access:
    """What ``launch`` gives Gradio: the login check (None: no login) and a warning to print (None: none).

    Attributes:
        auth: an ``async (username, password) -> bool`` for ``gr.Blocks.launch(auth=...)``.
        warning: a sentence for the terminal.
    """

    auth: Callable[[str, str], Awaitable[bool]] | None
    warning: str | None


def beyond_this_machine(host: str) -> bool:
    """Whether serving on ``host`` lets other machines in (anything but a loopback address or localhost)."""
    if host.strip().lower() == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it resolves to an address other machines may reach
        return True


def decide_access(host: str, password: str | None, public: bool) -> Access:
    """The login for serving on ``host``.

    Args:
        host: the address the server binds.
        password: the studio's password (``--password`` or ``$STUDIO_PASSWORD``), or None.
        public: public demo mode (no login asked; its caps apply).
    """
    exposed = beyond_this_machine(host)
    if password and exposed:
        return Access(password_check(password), None)
    if password:
        return Access(None, f"Serving on {host}, which only this machine can reach: the password is not asked. "
                            "It protects the studio when it is served beyond this machine (--host 0.0.0.0).")
    if exposed and not public:
        return Access(None, f"Warning: the studio is served on {host} without a password: anyone who can reach "
                            "this port can train, see the uploaded data and download the models. Set one with "
                            "`studio ui --password` or STUDIO_PASSWORD, or serve on 127.0.0.1.")
    return Access(None, None)


def password_check(password: str) -> Callable[[str, str], Awaitable[bool]]:
    """An async login check for Gradio: any user name, this password (compared in constant time)."""
    expected = password.encode("utf-8")

    async def check(username: str, given: str) -> bool:
        if hmac.compare_digest(str(given).encode("utf-8"), expected):
            return True
        await asyncio.sleep(FAILED_LOGIN_DELAY_S)  # async: a wrong guess holds no server thread
        return False

    return check
