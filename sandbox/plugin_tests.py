"""Running a plugin's own tests in the jail: pytest over the ``tests/`` folder of an uploaded
package, before any reviewer looks at it (the publishing pre-review).

The jail is the worker's (:mod:`sandbox.jail`): no network, an empty environment, the plugin's
folder read-only at ``/plugin``, a private ``/tmp`` and the worker's resource limits — with
pytest (and its own dependencies) importable beside the SDK. Nothing is written into the
plugin's folder: no bytecode, no cache. The run has a wall-clock limit; past it the jail is
killed and the run counts as failed.

The tests may use pytest, the SDK and its test kit (``canopy_sdk.testing``) and the standard
library; anything else they import is missing in the jail and fails them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from . import jail

#: The most output kept from a run (its end: pytest's summary is last).
OUTPUT_KEPT = 8_000
#: A test run's limits: a worker's, with room for a test suite's threads and their stacks.
TEST_LIMITS = jail.Limits(memory_bytes=2 * 1024**3, processes=256)
_SUMMARY = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")


@dataclass(frozen=True)
class TestRun:
    """How a package's tests went."""

    exit_code: int | None  #: pytest's (0 all passed, 1 some failed, 5 none collected); None: killed
    counts: dict[str, int]  #: passed, failed, error, skipped… as pytest's summary says
    output: str  #: the end of what pytest printed
    timed_out: bool = False

    @property
    def passed(self) -> bool:
        """All collected tests passed (at least one ran)."""
        return self.exit_code == 0 and not self.timed_out


def _packages() -> list[Path]:
    """The worker's packages and pytest's own (``pytest``, ``_pytest``, ``iniconfig``,
    ``packaging``, ``pygments`` and the one-file module ``py``)."""
    import _pytest
    import iniconfig
    import packaging
    import py
    import pygments
    import pytest

    found = [Path(module.__file__).resolve() for module in (pytest, _pytest, iniconfig, packaging, pygments, py)]
    return jail._packages() + [path.parent if path.name == "__init__.py" else path for path in found]


def _bootstrap(config: dict) -> str:
    return (f"import sys; sys.path[:0] = [{jail.LIB_DIR!r}]; from sandbox.plugin_tests import main; "
            f"main({json.dumps(config)!r})")


def main(config_json: str) -> None:
    """Inside the jail: confine this process, then run pytest over the plugin's tests."""
    from .worker import apply_limits, drop_privileges

    config = json.loads(config_json)
    apply_limits(config["limits"])
    drop_privileges(config["uid"])
    import pytest

    folder = config["plugin_dir"]
    sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "--import-mode=importlib", "--rootdir", folder,
                          "-o", "addopts=", "-o", "python_files=test_*.py", "--color=no", f"{folder}/tests"]))


def command(spec: jail.JailSpec, *, bwrap: str = "bwrap") -> list[str]:
    """The bubblewrap command that runs ``spec``'s folder's tests."""
    drop_to = jail.plugin_uid(spec.plugin_id) if os.geteuid() == 0 else None
    config = {"plugin_dir": jail.PLUGIN_DIR, "uid": drop_to, "limits": spec.limits.to_wire()}
    return jail.jail_command(spec, _packages(), bwrap=bwrap) + ["-c", _bootstrap(config)]


def run(spec: jail.JailSpec, *, timeout: float, probe: jail.Probe) -> TestRun:
    """Run the tests of ``spec``'s folder in the jail (``probe`` must be ok and not the unsafe
    development mode: unreviewed tests run only isolated)."""
    if not probe.ok or probe.unsafe:
        raise RuntimeError(f"the plugin's tests run only in the sandbox, which cannot isolate them here: {probe.reason}")
    process = subprocess.Popen(command(spec), env={}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the jail and everything the tests started in it
        out, _ = process.communicate()
        output = out.decode("utf-8", "replace")[-OUTPUT_KEPT:]
        return TestRun(None, _counts(output), output, timed_out=True)
    output = out.decode("utf-8", "replace")[-OUTPUT_KEPT:]
    return TestRun(process.returncode, _counts(output), output)


def _counts(output: str) -> dict[str, int]:
    lines = [line for line in output.strip().splitlines() if _SUMMARY.search(line)]
    if not lines:
        return {}
    return {("error" if kind.startswith("error") else kind): int(n) for n, kind in _SUMMARY.findall(lines[-1])}
