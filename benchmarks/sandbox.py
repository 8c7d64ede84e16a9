"""Sandbox: what running a partner mini-program out of process costs, in the same run as its
baselines.

1. **A hook round trip** (one process, the cases interleaved as :func:`common.time_per_call`
   does). Two generated plugins with the same code (``canopy_storefront_tiles`` returning two
   tiles): one published by the bank (in-process), one by a partner (in the sandbox).

   a. the in-process plugin's function called directly;
   b. ``runtime.invoker.call`` of the in-process plugin (thread pool, budget, bulkhead, check);
   c. ``runtime.invoker.call`` of the sandboxed plugin: the same, plus the proxy, the call's
      frame to the worker and the answer's frame back over its socket, JSON on both sides, the
      worker calling the same code, and the answer checked and turned back into SDK types;
   p. the protocol alone: (c)'s call and result messages over the sandbox's own channel to a
      Python process that answers at once (frames encoded, decoded and checked on both sides;
      no plugin, jail, ctx objects or SDK types) — the floor of this protocol's design;
   r. a raw socket round trip: a Python process echoing over a Unix socket pair, with a 4-byte
      length prefix, sending back as many bytes as (c)'s answer frame for a request as large as
      (c)'s call frame — the same payload, without JSON or any checking.

   The goal (issue 6): (c) ≤ 3 × (r).
2. **A storefront with one sandboxed zone against the same with an in-process zone**: one
   gunicorn server (the repo's settings) on a SQLite instance, branch ``BENCH-SB`` with the
   partner plugin installed and ``BENCH-IP`` with its in-process twin, next to the bare Flask
   app's ``/tiles``; every answer must be a 200 with exactly one zone, none unavailable.
"""

from __future__ import annotations

import json
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import common, plugin_factory, storefront
from .serving import LEGEND, REPO, Server, gunicorn_settings, print_settings, server_env, summarise

HOOK = "canopy_storefront_tiles"
GOAL = 3.0  # the sandboxed round trip ÷ the raw socket round trip, at most
TILES = 2
#: branch code → (label, generated plugin prefix, publisher kind)
BRANCHES = {"BENCH-SB": ("sandboxed", "sbx", "partner"), "BENCH-IP": ("in-process", "inp", "bank")}

#: The raw socket's other end: read a length-prefixed request, answer ``size`` bytes, until EOF.
ECHO = """
import socket, struct, sys
sock = socket.socket(fileno=int(sys.argv[1]))
answer = b"x" * int(sys.argv[2])
frame = struct.pack(">I", len(answer)) + answer
def read(n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise SystemExit(0)
        data += chunk
    return data
while True:
    (length,) = struct.unpack(">I", read(4))
    read(length)
    sock.sendall(frame)
"""


class RawSocket:
    """The baseline: one request of ``request`` bytes and one answer of ``answer`` bytes over a
    Unix socket pair to a Python process, each with a 4-byte length prefix."""

    def __init__(self, request: int, answer: int) -> None:
        ours, theirs = socket.socketpair()
        self.process = subprocess.Popen([sys.executable, "-c", ECHO, str(theirs.fileno()), str(answer)],
                                        pass_fds=[theirs.fileno()])
        theirs.close()
        self.sock = ours
        self.frame = struct.pack(">I", request) + b"y" * request
        self.answer = answer

    def round_trip(self) -> None:
        self.sock.sendall(self.frame)
        missing = 4 + self.answer
        while missing:
            chunk = self.sock.recv(missing)
            if not chunk:
                raise RuntimeError("the echo process went away")
            missing -= len(chunk)

    def close(self) -> None:
        self.sock.close()
        self.process.wait(10)


def frames(call) -> tuple[dict, dict]:
    """The call message ``call()`` sends to a worker and the result message it reads back, taken
    by watching the sandbox's own encoder and decoder once."""
    from sandbox import protocol

    sent, read = [], []
    encode, decode = protocol.encode, protocol.decode

    def watched_encode(message, **kwargs):
        if message.get("kind") == "call":
            sent.append(dict(message))
        return encode(message, **kwargs)

    def watched_decode(payload, kinds):
        message = decode(payload, kinds)
        if message.get("kind") == "result":
            read.append(message)
        return message

    protocol.encode, protocol.decode = watched_encode, watched_decode
    try:
        call()
    finally:
        protocol.encode, protocol.decode = encode, decode
    if len(sent) != 1 or len(read) != 1:
        raise RuntimeError(f"expected one call and one result frame, saw {len(sent)} and {len(read)}")
    return sent[0], read[0]


def payload_size(message: dict) -> int:
    """The bytes of ``message``'s frame after the length prefix."""
    from sandbox import protocol

    return len(protocol.encode(message)) - protocol.HEADER.size


#: The protocol's other end without a plugin: the sandbox's own channel, answering each call
#: with the result message given (its frames checked and JSON on both sides, as a worker's are).
PROTOCOL_ECHO = """
import json, socket, sys
sys.path.insert(0, sys.argv[3])
from sandbox import protocol
channel = protocol.Channel(socket.socket(fileno=int(sys.argv[1])), accepts=protocol.HOST_KINDS)
value = json.loads(sys.argv[2])
while True:
    try:
        message = channel.receive()
    except protocol.ChannelClosed:
        raise SystemExit(0)
    channel.send("result", id=message["id"], call=message["id"], value=value)
"""


class ProtocolEcho:
    """The sandbox's protocol alone: the same call and result messages over the sandbox's
    :class:`~sandbox.protocol.Channel` to a Python process that answers without a plugin, a
    jail, ctx objects or SDK types."""

    def __init__(self, call: dict, result: dict) -> None:
        from sandbox import protocol

        ours, theirs = socket.socketpair()
        self.process = subprocess.Popen([sys.executable, "-c", PROTOCOL_ECHO, str(theirs.fileno()),
                                         json.dumps(result["value"]), str(REPO)], pass_fds=[theirs.fileno()])
        theirs.close()
        self.channel = protocol.Channel(ours, accepts=protocol.WORKER_KINDS)
        self.fields = {name: call[name] for name in ("hook", "ctx", "args")}

    def round_trip(self) -> None:
        self.channel.send("call", **self.fields)
        self.channel.receive(time.monotonic() + 5)

    def close(self) -> None:
        self.channel.close()
        self.process.wait(10)


def _round_trips(work: Path) -> dict:
    from canopy_sdk import results
    from canopy_sdk.types import BranchInfo

    from host import create_app
    from host.runtime import get_runtime
    from host.runtime.sandboxed import SandboxedPlugin

    ids = {label: storefront.write_plugins(work / "hook-plugins", 1, TILES, prefix=f"hook{prefix}", publisher=kind)[0]
           for label, prefix, kind in BRANCHES.values()}
    app = create_app(plugin_factory.app_config(work / "hook-instance", work / "hook-plugins"))
    runtime = get_runtime(app)
    try:
        if runtime.refused:
            raise RuntimeError(f"plugins refused: {[(p.id, p.problem) for p in runtime.refused]}")
        sandboxed, local = ids["sandboxed"], ids["in-process"]
        if not isinstance(runtime.pm.get_plugin(sandboxed), SandboxedPlugin):
            raise RuntimeError(f"{sandboxed} is not running in the sandbox")
        runtime.sandbox.warm(wait=True)  # as a server's process does right after it forks: no first call waits for a start
        branch = BranchInfo(code="SH001", name="上海分行", parent="HQ")
        ctx = {pid: runtime.context(pid, branch=branch, locale="en", approved_scopes=storefront.SCOPES) for pid in ids.values()}
        invoker, check = runtime.invoker, results.check_tiles
        fn = {pid: runtime.impl(pid, HOOK) for pid in ids.values()}

        def through_runtime(pid: str):
            outcome = invoker.call(pid, HOOK, fn[pid], {"ctx": ctx[pid]}, check)
            if not outcome.ok:
                raise RuntimeError(f"{pid}: {outcome.status} {outcome.error!r}")
            return outcome.value

        same = [(t.title, t.link) for t in through_runtime(sandboxed)] == [(t.title, t.link) for t in through_runtime(local)]
        call, result = frames(lambda: through_runtime(sandboxed))
        request, answer = payload_size(call), payload_size(result)
        raw, echo = RawSocket(request, answer), ProtocolEcho(call, result)
        try:
            cases = {
                "a": lambda: fn[local](ctx=ctx[local]),
                "b": lambda: through_runtime(local),
                "c": lambda: through_runtime(sandboxed),
                "p": echo.round_trip,
                "r": raw.round_trip,
            }
            measured = common.time_per_call(cases, max_total_s=15.0)
        finally:
            raw.close()
            echo.close()
    finally:
        runtime.invoker.shutdown()  # stops the sandbox's workers too
    labels = {
        "a": "a. direct call of the in-process plugin's function",
        "b": "b. runtime.invoker.call, in-process plugin",
        "c": "c. runtime.invoker.call, sandboxed plugin (one round trip to its worker)",
        "p": "p. the protocol alone: (c)'s two messages over the sandbox's channel, no plugin",
        "r": f"r. raw socket round trip, {request:,} bytes out and {answer:,} back",
    }
    rows = [[labels[key], common.us(measured[key].median), common.us(measured[key].p95),
             common.ratio(measured[key].median, measured["r"].median),
             common.ratio(measured[key].median, measured["a"].median)] for key in "abcpr"]
    print(common.table(["path", "median", "p95", "vs raw socket (r)", "vs direct call (a)"], rows, align="lrrrr"))
    share = measured["c"].median / measured["r"].median
    met = share <= GOAL
    common.note(f"the sandboxed plugin answers the same tiles as its in-process twin: {'yes' if same else 'NO'}")
    common.note(f"goal: sandboxed round trip (c) ≤ {GOAL:.0f}× the raw socket round trip (r): "
                f"{'met' if met else 'NOT met'} ({share:.2f}×)")
    return {"direct": measured["a"].median, "in_process": measured["b"].median, "sandboxed": measured["c"].median,
            "protocol": measured["p"].median, "raw": measured["r"].median, "ratio": share, "met": met, "same": same,
            "frames": {"call": request, "result": answer}}


def _until_served(page) -> None:
    """Wait (untimed, up to a minute) until the sandboxed page comes with its zone: each server
    process starts its sandbox workers in the background right after it forks."""
    from .serving import get

    deadline = time.monotonic() + 60
    while True:
        status, body = get(page.server.port, page.path)
        if not page.check(status, body):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{page.label}: {page.check(status, body)} a minute after the server started")
        time.sleep(0.2)


def _storefronts(work: Path) -> dict:
    layout = {code: storefront.write_plugins(work / "plugins", 1, TILES, prefix=prefix, publisher=kind)
              for code, (_label, prefix, kind) in BRANCHES.items()}
    settings = gunicorn_settings(server_env())
    workers = int(settings["workers"])
    server, prepared = storefront.prepare_instance(work, "SQLite", None, layout, workers)
    bare = Server("bare Flask", "benchmarks.bare_app:app", server_env(), work / "bare.log", workers)
    servers = [bare, server]
    try:
        for running in servers:
            running.start()
        for running in servers:
            running.wait_ready()
        one_zone = lambda status, body: storefront.page_problem(status, body, 1)  # noqa: E731
        pages = [storefront.Page("bare Flask /tiles", bare, "/tiles", lambda status, body: "" if status == 200 else f"status {status}")]
        pages += [storefront.Page(f"Canopy /s/{code} ({label} zone)", server, f"/s/{code}", one_zone)
                  for code, (label, _prefix, _kind) in BRANCHES.items()]
        _until_served(pages[1])
        looked = storefront.first_look(pages)
        print_settings(settings)
        common.note(f"SQLite instance: {'; '.join(prepared)}")
        common.note("pages: " + "; ".join(looked))
        results, _counts = storefront.measure(pages)
        summaries = {page.label: summarise(page.label, results[page.label]) for page in pages}
        print(common.table(["page", "requests", "errors", "degraded", "req/s per round", "req/s (median)", "p50 ms",
                            "p95 ms", "server CPU ms/req", "client CPU"], [s.row for s in summaries.values()],
                           align="lrrrrrrrrr"))
        sandboxed, local = (summaries[page.label] for page in pages[1:])
        failures = sum(p.errors + p.wrong for phases in results.values() for p in phases)
        common.note(f"\nthe page with a sandboxed zone: {sandboxed.rps / local.rps:.2f}× the requests per second of the "
                    f"page with an in-process zone ({sandboxed.rps:,.0f} vs {local.rps:,.0f}); server CPU per request "
                    f"{common.ms(sandboxed.cpu_per_request)} vs {common.ms(local.cpu_per_request)} ms "
                    f"(the sandbox's workers are the server's descendants, and counted)")
        common.note(LEGEND)
        if failures:
            common.note(f"!!! {failures} FAILED ANSWERS: this is not a clean run !!!")
        return {"sandboxed": sandboxed.rps, "in_process": local.rps, "ratio": sandboxed.rps / local.rps,
                "failures": failures}
    finally:
        for running in servers:
            running.stop()


def run() -> dict:
    common.heading("sandbox: a partner plugin's hook out of process, next to a raw socket and an in-process call")
    started = time.perf_counter()
    common.note(f"load average at the start: {common.load_average()}")
    work = Path(tempfile.mkdtemp(prefix="canopy-bench-sandbox-"))
    try:
        figures = {"round_trip": _round_trips(work)}
        common.note("\nstorefront: one zone, sandboxed or in-process, same server")
        figures["storefront"] = _storefronts(work)
        common.note(f"(sandbox: {time.perf_counter() - started:.0f} s; load average now {common.load_average()})")
        return figures
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    run()
