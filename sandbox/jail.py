"""Building the jail a plugin worker runs in, and asking whether this machine can build it.

The recipe (docs/sandbox.md, "Isolation"): bubblewrap gives the worker new network, PID,
IPC, UTS and cgroup namespaces (so no network at all: only its own, empty loopback), a
root filesystem with only the interpreter and its standard library, the SDK, Jinja2 and
MarkupSafe and the worker code (read-only), the plugin's folder (read-only, at ``/plugin``) and a small private tmpfs
(``/tmp``), and an empty environment. The worker then — before any plugin code runs — sets
its resource limits and, when the host runs as root, becomes a user id of the plugin's own
so the process limit counts that plugin's processes alone.

Where this cannot be set up, :func:`probe` says why and partner plugins do not start. The
only exception is :data:`UNSAFE_ENV` set to :data:`UNSAFE_VALUE` on a developer's machine:
workers then run as plain subprocesses (clean environment and limits, no namespaces),
and every start says so loudly in the log.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("canopy.sandbox")

#: The development flag that lets partner plugins run without isolation.
UNSAFE_ENV = "CANOPY_SANDBOX_UNSAFE"
#: Its only accepted value: a person must mean it.
UNSAFE_VALUE = "run-partner-code-without-isolation"

#: Where things appear inside the jail.
PLUGIN_DIR = "/plugin"
LIB_DIR = "/opt/canopy/lib"
PYTHON_DIR = "/opt/python"

#: User ids of plugins when the host runs as root: UID_BASE + a stable hash of the id.
UID_BASE = 200_000
UID_SPAN = 50_000


@dataclass(frozen=True)
class Limits:
    """Resource limits of one worker process (see ``resource.setrlimit``)."""

    memory_bytes: int = 512 * 1024 * 1024  #: RLIMIT_AS, address space
    cpu_seconds: int = 120  #: RLIMIT_CPU hard limit over the worker's life (it retires at 80 %)
    open_files: int = 64  #: RLIMIT_NOFILE
    processes: int = 32  #: RLIMIT_NPROC, counted per plugin user id (when the host is root)
    file_bytes: int = 8 * 1024 * 1024  #: RLIMIT_FSIZE, the largest file it may write
    scratch_bytes: int = 16 * 1024 * 1024  #: size of its private /tmp

    def to_wire(self) -> dict[str, int]:
        """The limits the worker applies to itself, as JSON."""
        return {"memory_bytes": self.memory_bytes, "cpu_seconds": self.cpu_seconds,
                "open_files": self.open_files, "processes": self.processes, "file_bytes": self.file_bytes}


@dataclass(frozen=True)
class Probe:
    """Whether isolation works on this machine, and if not, why."""

    ok: bool
    reason: str
    unsafe: bool = False  #: running without isolation under the development flag


@dataclass
class JailSpec:
    """What one plugin's worker command is built from."""

    plugin_id: str
    folder: Path
    limits: Limits = field(default_factory=Limits)


def plugin_uid(plugin_id: str) -> int:
    """The user id a plugin's workers run as when the host is root (stable across hosts)."""
    return UID_BASE + zlib.crc32(plugin_id.encode("utf-8")) % UID_SPAN


def unsafe_requested(environ: dict[str, str] | None = None) -> bool:
    """Whether the development flag asks to run partner code without isolation."""
    value = (os.environ if environ is None else environ).get(UNSAFE_ENV, "")
    if value and value != UNSAFE_VALUE:
        log.error("%s is set to %r, which is not %r: ignored; partner plugins need isolation",
                  UNSAFE_ENV, value, UNSAFE_VALUE)
    return value == UNSAFE_VALUE


def _packages() -> list[Path]:
    """The package folders the worker imports: this package, the SDK and the SDK's
    dependencies, and Jinja2 with MarkupSafe (the worker renders its plugin's page templates)."""
    import canopy_sdk
    import jinja2
    import markupsafe
    import marshmallow
    import pluggy

    modules = (sys.modules[__package__], canopy_sdk, pluggy, marshmallow, jinja2, markupsafe)
    return [Path(module.__file__).resolve().parent for module in modules]


def _bootstrap(lib_dir: str) -> str:
    # -I: no environment variables, no user site, no script folder on sys.path; -S: no site
    # packages at all. The worker's imports come from lib_dir and the standard library only.
    return f"import sys; sys.path[:0] = [{lib_dir!r}]; from sandbox.worker import main; main()"


def _python() -> tuple[Path, Path, str]:
    """(the interpreter's prefix, the interpreter, its path relative to the prefix)."""
    executable = Path(os.path.realpath(sys.executable))
    prefix = Path(sys.base_prefix).resolve()
    try:
        relative = executable.relative_to(prefix).as_posix()
    except ValueError:  # an interpreter outside its prefix: bind it on its own
        relative = "bin/" + executable.name
    return prefix, executable, relative


def worker_config(spec: JailSpec, fd: int, *, drop_to: int | None, plugin_dir: str) -> str:
    """The JSON the worker reads from its command line."""
    return json.dumps({"fd": fd, "plugin_dir": plugin_dir, "plugin_id": spec.plugin_id,
                       "uid": drop_to, "limits": spec.limits.to_wire()})


def bwrap_command(spec: JailSpec, fd: int, *, bwrap: str = "bwrap") -> list[str]:
    """The bubblewrap command line that runs ``spec``'s worker with socket ``fd``."""
    drop_to = plugin_uid(spec.plugin_id) if os.geteuid() == 0 else None
    return jail_command(spec, _packages(), bwrap=bwrap) + [
        "-c", _bootstrap(LIB_DIR), worker_config(spec, fd, drop_to=drop_to, plugin_dir=PLUGIN_DIR)]


def jail_command(spec: JailSpec, packages: list[Path], *, bwrap: str = "bwrap") -> list[str]:
    """The bubblewrap command line up to the interpreter's ``-I -S -B``: the jail of ``spec``
    with ``packages`` (folders, or single-module files) importable from :data:`LIB_DIR`; the
    caller adds what the interpreter runs."""
    prefix, executable, relative = _python()
    as_root = os.geteuid() == 0
    command = [bwrap, "--die-with-parent", "--new-session", "--clearenv"]
    if as_root:
        # No user namespace: the worker drops to the plugin's own (real) user id itself, so
        # RLIMIT_NPROC counts that plugin's processes. Root skips that limit entirely.
        command += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    else:
        command += ["--unshare-all", "--cap-drop", "ALL"]
    command += ["--hostname", "sandbox"]
    # Mount points bubblewrap creates are 0700 root's unless told otherwise.
    for directory in ("/opt", "/opt/canopy", LIB_DIR):
        command += ["--perms", "0755", "--dir", directory]
    command += ["--ro-bind", str(prefix), PYTHON_DIR]
    site = Path(sysconfig.get_paths(vars={"base": str(prefix), "platbase": str(prefix)})["purelib"])
    if site.is_dir() and prefix in site.parents:  # hide the interpreter's own site-packages
        command += ["--tmpfs", f"{PYTHON_DIR}/{site.relative_to(prefix).as_posix()}"]
    if prefix not in executable.parents:
        command += ["--ro-bind", str(executable), f"{PYTHON_DIR}/{relative}"]
    # Shared libraries the interpreter and its extension modules link against (libc, libssl, …).
    for system in ("/usr/lib", "/usr/lib64"):
        if Path(system).is_dir():
            command += ["--ro-bind", system, system]
    command += ["--symlink", "usr/lib", "/lib"]
    if Path("/lib64").exists():
        command += ["--ro-bind", "/lib64", "/lib64"]
    for package in packages:
        command += ["--ro-bind", str(package), f"{LIB_DIR}/{package.name}"]
    command += ["--ro-bind", str(spec.folder.resolve()), PLUGIN_DIR]
    command += ["--proc", "/proc", "--dev", "/dev"]
    command += ["--size", str(spec.limits.scratch_bytes), "--perms", "1777", "--tmpfs", "/tmp"]
    command += ["--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp", "--setenv", "LANG", "C.UTF-8",
                "--chdir", "/tmp"]
    command += ["--", f"{PYTHON_DIR}/{relative}", "-I", "-S", "-B"]
    return command


def unsafe_command(spec: JailSpec, fd: int) -> list[str]:
    """The command of a worker without isolation (development flag only)."""
    lib_dir = str(Path(sys.modules[__package__].__file__).resolve().parents[1])
    sdk_dir = str(Path(sys.modules["canopy_sdk"].__file__).resolve().parents[1])
    bootstrap = (f"import sys; sys.path[:0] = [{lib_dir!r}, {sdk_dir!r}] + "
                 f"[p for p in {sys.path!r} if 'site-packages' in p]; "
                 "from sandbox.worker import main; main()")
    return [os.path.realpath(sys.executable), "-I", "-B", "-c", bootstrap,
            worker_config(spec, fd, drop_to=None, plugin_dir=str(spec.folder.resolve()))]


_PROBE_CHECK = """
import os, socket, sys
problems = []
if set(os.environ) - {"HOME", "TMPDIR", "LANG", "LC_CTYPE", "PWD"}:
    problems.append("the environment is not clean")
for path in ("/etc/shadow", "/root", "/home", "/var"):
    if os.path.exists(path):
        problems.append(path + " is visible")
try:
    socket.create_connection(("1.1.1.1", 53), timeout=0.5).close()
    problems.append("the network is reachable")
except OSError:
    pass
print("; ".join(problems) or "isolated")
sys.exit(1 if problems else 0)
"""

_probe_lock = threading.Lock()
_probe_cache: dict[str, Probe] = {}


def probe(*, refresh: bool = False) -> Probe:
    """Say whether partner plugins can be isolated here (cached per process).

    Runs a throw-away jail with the real recipe and checks from inside that the
    environment is empty, host paths are invisible and the network is unreachable.
    """
    with _probe_lock:
        if "probe" in _probe_cache and not refresh:
            return _probe_cache["probe"]
        result = _run_probe()
        if not result.ok and unsafe_requested():
            log.critical(
                "SANDBOX DISABLED: %s=%s — partner plugins will run WITHOUT isolation (%s). "
                "Never use this outside a developer's own machine.", UNSAFE_ENV, UNSAFE_VALUE, result.reason)
            result = Probe(True, f"UNSAFE: no isolation ({result.reason})", unsafe=True)
        _probe_cache["probe"] = result
        return result


def _run_probe() -> Probe:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Probe(False, "bubblewrap (bwrap) is not installed; install it (apt-get install bubblewrap)")
    prefix, _, relative = _python()
    command = bwrap_command(JailSpec("canopy.sandbox.probe", Path(__file__).parent), 0, bwrap=bwrap)
    # Run the check instead of the worker: same jail, same interpreter.
    command = command[: command.index("--") + 1] + [f"{PYTHON_DIR}/{relative}", "-I", "-S", "-B", "-c", _PROBE_CHECK]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20, env={}, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Probe(False, f"bubblewrap could not start a jail: {exc}")
    if done.returncode != 0:
        detail = (done.stdout.strip() or done.stderr.strip() or f"exit code {done.returncode}").splitlines()[-1]
        return Probe(False, f"bubblewrap could not isolate a process here: {detail[:300]}")
    return Probe(True, "bubblewrap: own network, PID, IPC and mount namespaces, clean environment")
