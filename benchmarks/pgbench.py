"""pgbench, PostgreSQL's own benchmark tool: the baseline the payments benchmark measures against."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass

from .postgres import POSTGRES


@dataclass(frozen=True)
class PgbenchRun:
    """What one ``pgbench`` run reported."""

    tps: float
    transactions: int
    latency_ms: float
    failed: int


def parse_pgbench(output: str) -> PgbenchRun:
    """The figures of pgbench's summary (``tps = … (without initial connection time)``)."""
    def number(pattern: str, default: str | None = None) -> str:
        found = re.search(pattern, output)
        if found is None and default is None:
            raise RuntimeError(f"pgbench printed no {pattern!r}:\n{output[-1500:]}")
        return found.group(1) if found else default

    return PgbenchRun(float(number(r"tps = ([\d.]+) \(without initial connection time\)")),
                      int(number(r"number of transactions actually processed: (\d+)")),
                      float(number(r"latency average = ([\d.]+) ms")),
                      int(number(r"number of failed transactions: (\d+)", "0")))


class Pgbench:
    """``pgbench`` on one database of the benchmark's PostgreSQL server."""

    def __init__(self, executable: str, database: str) -> None:
        from sqlalchemy.engine import make_url

        url = make_url(POSTGRES)
        self.command = [executable, *(f"--{name}={value}" for name, value in
                                      (("host", url.host), ("port", url.port), ("username", url.username)) if value)]
        self.env = {**os.environ, **({"PGPASSWORD": url.password} if url.password else {})}
        self.database = database

    def __call__(self, *args: str, timeout: float = 300) -> str:
        """Run pgbench with ``args`` on the database; return what it printed (an error when it fails)."""
        done = subprocess.run([*self.command, *args, self.database], env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"pgbench {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-1500:]}")
        return done.stdout + done.stderr

    def version(self) -> str:
        """What ``pgbench --version`` prints."""
        return subprocess.run([self.command[0], "--version"], capture_output=True, text=True, timeout=30).stdout.strip()

    def measure(self, seconds: int, clients: int) -> PgbenchRun:
        """One run of the TPC-B-like script for ``seconds`` with ``clients`` connections (and as many threads)."""
        return parse_pgbench(self("--builtin=tpcb-like", f"--client={clients}", f"--jobs={clients}",
                                  f"--time={seconds}", "--no-vacuum", timeout=seconds + 120))
