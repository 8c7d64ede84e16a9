"""A real Canopy server for tests that need one: ``canopy serve`` (gunicorn with the repo's
settings) on a free port of 127.0.0.1, in its own process group.

Used by the browser tests and by the bank test, which kills gunicorn workers mid-flight.
Only Canopy settings given here reach the server: a ``CANOPY_*`` variable of the developer's
shell never does.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

#: The console scripts of the interpreter running the tests (``.venv/bin``); not resolved,
#: so a virtualenv's symlinked python keeps its own folder.
BIN = Path(sys.executable).parent
START_SECONDS = 60  # bounds a broken start only: gunicorn answers /healthz within seconds
#: Real Argon2id, at the suite's low cost.
LOW_ARGON2 = {"CANOPY_ARGON2_TIME_COST": "1", "CANOPY_ARGON2_MEMORY_KIB": "8192", "CANOPY_ARGON2_PARALLELISM": "1"}


class ServerFailed(RuntimeError):
    """The server did not start, or a ``canopy`` command failed; the message holds its output."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(**settings: str) -> dict[str, str]:
    """This process's environment without its ``CANOPY_*`` variables, plus ``settings``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CANOPY_")}
    env.update(settings)
    return env


def canopy(*args: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``canopy args…``; :class:`ServerFailed` with its output when it exits non-zero."""
    done = subprocess.run([str(BIN / "canopy"), *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode != 0:
        raise ServerFailed(f"canopy {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done


def healthy(url: str) -> bool:
    """Whether ``url``/healthz answers 200 (no proxy: only 127.0.0.1 is ever contacted)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url + "/healthz", timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


class LiveServer:
    """A running ``canopy serve``: its base URL, its log, and its gunicorn workers."""

    def __init__(self, env: dict[str, str], cwd: Path, *, workers: int = 1) -> None:
        self.env = env
        self.cwd = cwd
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = cwd / "server.log"
        self.process: subprocess.Popen | None = None

    def __call__(self, path: str) -> str:
        """The absolute URL of ``path`` on this server."""
        return self.url + path

    def start(self) -> "LiveServer":
        """Start gunicorn and wait until it answers ``/healthz``."""
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(BIN / "canopy"), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", str(self.workers)],
                env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + START_SECONDS
        while not healthy(self.url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                state = f"exited with {self.process.returncode}" if self.process.poll() is not None else "not answering"
                self.stop()
                raise ServerFailed(f"canopy serve {state} on {self.url}:\n{self.output()[-4000:]}")
            time.sleep(0.1)
        return self

    def output(self) -> str:
        """What the server wrote so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def worker_pids(self) -> list[int]:
        """The gunicorn workers now running (children of the master; Linux ``/proc``)."""
        if self.process is None:
            return []
        found = []
        for entry in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = entry.read_text().rpartition(")")[2].split()
            except OSError:
                continue  # ended meanwhile
            if int(fields[1]) == self.process.pid:  # the parent pid
                found.append(int(entry.parent.name))
        return found

    def kill_worker(self, pid: int) -> bool:
        """SIGKILL one worker (no clean-up of any kind: as if its machine lost power); whether it was there."""
        try:
            os.kill(pid, signal.SIGKILL)
            return True
        except ProcessLookupError:
            return False

    def stop(self) -> None:
        """Stop the master and its workers: TERM to the process group, KILL if it lingers."""
        if self.process is None:
            return
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
