"""Starting, lending out, restarting and disabling one plugin's worker processes.

Each host process (each gunicorn worker) owns its supervisors and their workers; they
start on first use, after any fork (docs/sandbox.md, "Processes"). A worker serves one
call at a time; a plugin has at most ``pool_size`` workers in one host process.

Faults — a worker that died, overran its budget (and was killed for it), broke the
protocol or could not start — are counted. After each fault the next start waits
(exponential backoff); ``max_faults`` faults within ``window`` seconds disable the plugin,
with the reason, until staff enable it again.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable

from . import jail, protocol

log = logging.getLogger("canopy.sandbox")

#: How long a worker may take to import its plugin and say ``ready``.
START_TIMEOUT = 15.0
#: How much of a worker's stdout/stderr the host keeps (logged line by line); the rest is read and dropped.
OUTPUT_KEPT_BYTES = 16 * 1024


class SandboxUnavailable(Exception):
    """No worker can serve the call: disabled, backing off after a fault, busy or failing to start."""


class PluginDisabled(SandboxUnavailable):
    """The plugin faulted too often and is disabled; ``reason`` says why."""

    def __init__(self, plugin_id: str, reason: str) -> None:
        self.reason = reason
        super().__init__(f"plugin {plugin_id} is disabled: {reason}")


@dataclass(frozen=True)
class FaultPolicy:
    """When to restart and when to give up on a plugin."""

    max_faults: int = 3  #: this many faults …
    window: float = 3600.0  #: … within this many seconds disable the plugin
    backoff: float = 1.0  #: seconds to wait before the first restart; doubles with each fault
    max_backoff: float = 60.0

    def delay(self, recent_faults: int) -> float:
        """Seconds to wait before starting a worker after ``recent_faults`` faults in the window."""
        if recent_faults <= 0:
            return 0.0
        return min(self.backoff * 2 ** (recent_faults - 1), self.max_backoff)


class _Spawner:
    """Starts processes from one long-lived thread.

    bubblewrap's ``--die-with-parent`` (PR_SET_PDEATHSIG) fires when the *thread* that
    started it ends; a request thread would take its plugin's workers with it.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._pid = -1
        self._lock = threading.Lock()

    def popen(self, *args, **kwargs) -> subprocess.Popen:
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._queue = queue.Queue()
                self._thread = threading.Thread(target=self._run, args=(self._queue,), name="canopy-sandbox-spawner",
                                                daemon=True)
                self._thread.start()
            future: Future = Future()
            self._queue.put((future, args, kwargs))
        return future.result()

    @staticmethod
    def _run(requests: queue.Queue) -> None:
        while True:
            future, args, kwargs = requests.get()
            try:
                future.set_result(subprocess.Popen(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)


SPAWNER = _Spawner()


class WorkerProcess:
    """One running worker: its process, its channel and the reader of its output."""

    def __init__(self, plugin_id: str, process: subprocess.Popen, channel: protocol.Channel) -> None:
        self.plugin_id = plugin_id
        self.process = process
        self.channel = channel
        self.hooks: frozenset[str] = frozenset()
        self.calls = 0
        self._reader = threading.Thread(target=self._drain, name=f"canopy-sandbox-output-{plugin_id}", daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        """Read the worker's stdout/stderr so it never blocks on a full pipe; log the first bytes only."""
        stream = self.process.stdout
        assert stream is not None
        kept = 0
        for line in iter(stream.readline, b""):
            if kept < OUTPUT_KEPT_BYTES:
                kept += len(line)
                log.info("plugin %s output: %s", self.plugin_id, line[:1000].decode("utf-8", "replace").rstrip(),
                         extra={"plugin": self.plugin_id})
                if kept >= OUTPUT_KEPT_BYTES:
                    log.warning("plugin %s: output past %d bytes is dropped", self.plugin_id, OUTPUT_KEPT_BYTES,
                                extra={"plugin": self.plugin_id})
        stream.close()

    @property
    def pid(self) -> int:
        """The process id of the worker's outermost process (bubblewrap's, when jailed)."""
        return self.process.pid

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.poll() is None

    def describe_exit(self) -> str:
        """How the process ended, for a fault's reason."""
        try:
            code = self.process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return "stopped answering"
        if code < 0:
            return f"died of signal {signal.Signals(-code).name}"
        if code > 128 and code - 128 in signal.Signals._value2member_map_:
            # bubblewrap reports a child killed by a signal as 128 + the signal's number
            return f"died of signal {signal.Signals(code - 128).name}"
        return f"exited with status {code}"

    def kill(self) -> None:
        """Kill the worker (and, through the PID namespace, everything it started)."""
        self.channel.close()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.error("plugin %s: worker %d did not die", self.plugin_id, self.process.pid)
        if self._reader is not threading.current_thread():
            self._reader.join(timeout=1)  # its output pipe is closed now; leave no thread behind


def start_worker(spec: jail.JailSpec, probe: jail.Probe, *, timeout: float = START_TIMEOUT,
                 popen: Callable[..., subprocess.Popen] | None = None) -> WorkerProcess:
    """Start a worker for ``spec`` and wait for its ``ready``; raise :class:`SandboxUnavailable` if it fails.

    ``popen`` defaults to the long-lived spawner thread; a caller that stops the worker before
    its own thread ends (the inspection at load, on the main thread) may pass ``subprocess.Popen``.
    """
    host_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        fd = worker_end.fileno()
        command = jail.unsafe_command(spec, fd) if probe.unsafe else jail.bwrap_command(spec, fd)
        if probe.unsafe:
            log.critical("plugin %s: starting a worker WITHOUT isolation (%s)", spec.plugin_id, jail.UNSAFE_ENV)
        process = (popen or SPAWNER.popen)(command, pass_fds=(fd,), env={} if not probe.unsafe else {"LANG": "C.UTF-8"},
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
    finally:
        worker_end.close()
    worker = WorkerProcess(spec.plugin_id, process, protocol.Channel(host_end, accepts=protocol.WORKER_KINDS))
    try:
        message = worker.channel.receive(time.monotonic() + timeout)
    except protocol.Deadline:
        worker.kill()
        raise SandboxUnavailable(f"plugin {spec.plugin_id}: its worker did not start within {timeout:.0f} s") from None
    except protocol.ProtocolError as exc:
        reason = worker.describe_exit() if isinstance(exc, protocol.ChannelClosed) else str(exc)
        worker.kill()
        raise SandboxUnavailable(f"plugin {spec.plugin_id}: its worker could not start ({reason})") from None
    if message["kind"] == "failed":
        worker.kill()
        raise SandboxUnavailable(f"plugin {spec.plugin_id}: {message['error']}")
    if message["kind"] != "ready" or not all(isinstance(h, str) for h in message["hooks"]):
        worker.kill()
        raise SandboxUnavailable(f"plugin {spec.plugin_id}: its worker sent {message['kind']!r} instead of 'ready'")
    worker.hooks = frozenset(message["hooks"])
    return worker


class PluginSupervisor:
    """The workers of one plugin in this host process."""

    def __init__(self, spec: jail.JailSpec, *, probe: Callable[[], jail.Probe] = jail.probe, pool_size: int = 2,
                 policy: FaultPolicy = FaultPolicy(), on_disable: Callable[[str, str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, version: str = "") -> None:
        self.spec = spec
        self.plugin_id = spec.plugin_id
        self.version = version  #: the plugin version its workers run (the host may run two side by side)
        self.pool_size = pool_size
        self.policy = policy
        self.on_disable = on_disable
        self._probe = probe
        self._clock = clock
        self._lock = threading.Condition()
        self._idle: list[WorkerProcess] = []
        self._count = 0  # workers running or starting
        self._faults: collections.deque[float] = collections.deque()
        self._not_before = 0.0
        self._pid = os.getpid()
        self.disabled_reason: str | None = None
        self.last_fault: str | None = None
        self.fault_count = 0
        self.starts = 0

    # -- faults --------------------------------------------------------------------------------

    def _recent_faults(self, now: float) -> int:
        while self._faults and self._faults[0] <= now - self.policy.window:
            self._faults.popleft()
        return len(self._faults)

    def record_fault(self, reason: str) -> None:
        """Count a fault; back off before the next start; disable the plugin after too many."""
        disable = None
        with self._lock:
            now = self._clock()
            self._faults.append(now)
            self.fault_count += 1
            self.last_fault = reason
            recent = self._recent_faults(now)
            self._not_before = now + self.policy.delay(recent)
            if recent >= self.policy.max_faults and self.disabled_reason is None:
                disable = self.disabled_reason = (
                    f"{recent} faults within {self.policy.window / 60:.0f} minutes; the last: {reason}")
            self._lock.notify_all()
        log.error("plugin %s: worker fault: %s", self.plugin_id, reason, extra={"plugin": self.plugin_id})
        if disable is not None:
            log.error("plugin %s disabled: %s", self.plugin_id, disable, extra={"plugin": self.plugin_id})
            if self.on_disable is not None:
                try:
                    self.on_disable(self.plugin_id, disable)
                except Exception:
                    log.exception("plugin %s: recording that it is disabled failed", self.plugin_id)

    def enable(self) -> None:
        """Forget the faults and serve the plugin again (staff enabled it)."""
        with self._lock:
            self._faults.clear()
            self.disabled_reason = None
            self._not_before = 0.0

    # -- lending workers -------------------------------------------------------------------------

    def _forget_after_fork(self) -> None:
        # A forked host process must not use its parent's workers (their sockets are shared).
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._idle = []
            self._count = 0

    def acquire(self, deadline: float) -> WorkerProcess:
        """Lend an idle worker, starting one if the pool has room; wait until ``deadline`` (monotonic)."""
        with self._lock:
            self._forget_after_fork()
            while True:
                if self.disabled_reason is not None:
                    raise PluginDisabled(self.plugin_id, self.disabled_reason)
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive():
                        return worker
                    self._count -= 1
                    worker.kill()
                    self._lock.release()
                    try:
                        self.record_fault(f"worker {worker.pid} {worker.describe_exit()} while idle")
                    finally:
                        self._lock.acquire()
                now = self._clock()
                if self._count < self.pool_size and now >= self._not_before:
                    self._count += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if now < self._not_before:
                        raise SandboxUnavailable(
                            f"plugin {self.plugin_id} is restarting after a fault ({self.last_fault}); "
                            f"next start in {self._not_before - now:.1f} s")
                    raise SandboxUnavailable(f"all {self.pool_size} workers of plugin {self.plugin_id} are busy")
                wait = remaining if now >= self._not_before else min(remaining, self._not_before - now)
                self._lock.wait(max(wait, 0.001))
        return self._start(deadline)

    def prestart(self) -> None:
        """Start one worker in the background if the pool has none (so the first call finds it warm)."""
        with self._lock:
            self._forget_after_fork()
            if (self.disabled_reason is not None or self._idle or self._count >= self.pool_size
                    or self._clock() < self._not_before):
                return
            self._count += 1
        try:
            worker = self._start(time.monotonic())
        except SandboxUnavailable:
            return  # still starting: it joins the idle pool when ready (or its failure is a fault)
        self.release(worker)

    def _start(self, deadline: float) -> WorkerProcess:
        """Start a worker on the spawner; the caller waits until ``deadline``, the start goes on
        after that and its worker joins the idle pool."""
        outcome: Future = Future()

        def start() -> None:
            try:
                probe = self._probe()
                if not probe.ok:
                    raise SandboxUnavailable(f"plugin {self.plugin_id} cannot be isolated here: {probe.reason}")
                worker = start_worker(self.spec, probe)
            except BaseException as exc:
                with self._lock:
                    self._count -= 1
                    self._lock.notify_all()
                if not isinstance(exc, SandboxUnavailable) or "cannot be isolated" not in str(exc):
                    self.record_fault(f"start failed: {exc}")
                if outcome.set_running_or_notify_cancel():
                    outcome.set_exception(exc)
                return
            self.starts += 1
            if not outcome.set_running_or_notify_cancel():
                self.release(worker)  # the caller gave up waiting: keep the worker for the next call
                return
            outcome.set_result(worker)

        threading.Thread(target=start, name=f"canopy-sandbox-start-{self.plugin_id}", daemon=True).start()
        try:
            return outcome.result(timeout=max(deadline - time.monotonic(), 0.0))
        except TimeoutError:
            if outcome.cancel():
                raise SandboxUnavailable(f"plugin {self.plugin_id}: its worker is still starting") from None
            return outcome.result()

    def release(self, worker: WorkerProcess) -> None:
        """Give back a worker that answered properly."""
        with self._lock:
            if self._pid != os.getpid():
                return
            # It has just answered; one that dies while idle is caught when next lent out.
            if self.disabled_reason is None:
                self._idle.append(worker)
            else:
                self._count -= 1
                worker.kill()
            self._lock.notify_all()

    def retire(self, worker: WorkerProcess) -> None:
        """Stop a worker that asked to be replaced (not a fault)."""
        worker.kill()
        with self._lock:
            self._count -= 1
            self._lock.notify_all()

    def fault(self, worker: WorkerProcess, reason: str) -> None:
        """Kill a worker that misbehaved and count the fault."""
        worker.kill()
        with self._lock:
            self._count -= 1
            self._lock.notify_all()
        self.record_fault(reason)

    def shutdown(self) -> None:
        """Stop every idle worker (busy ones stop when their calls end)."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._count -= len(idle)
        for worker in idle:
            worker.kill()

    def status(self) -> dict[str, object]:
        """What staff and metrics see: workers, faults, disabled reason."""
        with self._lock:
            return {"plugin": self.plugin_id, "workers": self._count, "idle": len(self._idle),
                    "starts": self.starts, "faults": self.fault_count, "last_fault": self.last_fault,
                    "disabled": self.disabled_reason}
