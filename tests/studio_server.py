"""A real studio server for tests, driven through its job manager: ``python -m tests.studio_server HOME PORT``.

It serves exactly what ``python -m studio`` serves (``studio.app.launch`` around a ``core.jobs.JobManager``,
as bench/ui_load.py does) and also reads commands on stdin, one per line, answering one JSON line each:
``submit CONFIG_YAML``, ``resume RUN_DIR``, ``snapshot JOB_ID``, ``latest OWNER``, ``health``. So a test can
start it, submit through its manager, kill its training process or the whole server, start it again, and see
what the page would see. ``Server`` is the test side.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

OWNER = "tester"


def serve(home: str, port: int) -> None:
    from core.config import ConfigError, JobConfig
    from core.home import Home
    from core.jobs import JobManager
    from studio.app import launch

    studio_home = Home.resolve(home)
    manager = JobManager(studio_home)
    launch(studio_home, port=port, manager=manager, block=False)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        verb, _, arg = line.strip().partition(" ")
        try:
            if verb == "submit":
                answer = {"job": manager.submit(JobConfig.load(arg), owner=OWNER)}
            elif verb == "resume":
                answer = {"job": manager.resume(Path(arg), owner=OWNER)}
            elif verb in ("snapshot", "latest"):
                snap = manager.snapshot(arg) if verb == "snapshot" else manager.latest(arg)
                answer = _plain(snap)
            elif verb == "health":
                answer = {k: v for k, v in vars(manager.health()).items()}
            else:
                answer = {"error": f"unknown command {verb}"}
        except ConfigError as exc:
            answer = {"refused": str(exc)}
        print(json.dumps(answer, default=str), flush=True)


def _plain(snap) -> dict:
    if snap is None:
        return {"job": None}
    steps = [e["step"] for e in snap.events if e.get("type") == "train" and "loss" in e]
    resume = snap.resume
    return {"job": snap.job_id, "status": snap.status, "message": snap.message, "error": snap.error,
            "run": str(snap.run_dir), "queue_position": snap.queue_position, "worker_pid": snap.worker_pid,
            "step": snap.progress.get("step"), "loss_steps": steps, "finished": snap.finished,
            "can_resume": resume.can_resume if resume else None, "resume_reason": resume.reason if resume else None}


class Server:
    """The test side: start, command, check HTTP, kill, wait.

    Args:
        home: the studio home (kept across restarts).
        port: a free port.
    """

    def __init__(self, home: Path, port: int) -> None:
        self.home, self.port = Path(home), port
        self.log = open(self.home.parent / f"server-{port}-{time.time():.0f}.log", "w")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1",
               "TOKENIZERS_PARALLELISM": "false"}
        root = Path(__file__).resolve().parent.parent
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.studio_server", str(home), str(port)], cwd=root,
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True)
        assert self._answer(timeout=180).get("ready"), "the studio server did not start"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def ask(self, line: str, timeout: float = 60) -> dict:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self._answer(timeout)

    def _answer(self, timeout: float) -> dict:
        import selectors

        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            deadline = time.time() + timeout
            while time.time() < deadline:
                if sel.select(timeout=0.5):
                    line = self.proc.stdout.readline()
                    if not line:
                        raise AssertionError(f"the studio server exited ({self.proc.poll()})")
                    if line.startswith("{"):
                        return json.loads(line)
                elif self.proc.poll() is not None:
                    raise AssertionError(f"the studio server exited ({self.proc.returncode})")
        raise AssertionError("the studio server did not answer in time")

    def http_ok(self, path: str = "config") -> bool:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return response.status == 200

    def until(self, job: str, predicate, timeout: float = 180, verb: str = "snapshot") -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            snap = self.ask(f"{verb} {job}")
            if predicate(snap):
                return snap
            time.sleep(0.2)
        raise AssertionError(f"timed out; last: {snap}")

    def kill(self) -> None:
        """SIGKILL the server process alone (its training process is in a session of its own)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.log.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    serve(sys.argv[1], int(sys.argv[2]))
