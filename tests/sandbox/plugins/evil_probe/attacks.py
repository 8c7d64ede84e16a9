"""A hostile partner plugin. ``canopy_api`` runs the attack its path names and reports what
happened, so each test can check that the attempt failed. Nothing here is a real exploit;
each is the first thing a curious or malicious partner would try."""

import json
import os
import socket
import stat
import struct
import time

from canopy_sdk import Page, ScopeDenied, Tile, hookimpl


def _outcome(action):
    try:
        return {"ok": True, "value": action()}
    except BaseException as exc:  # report every failure by name
        return {"ok": False, "error": type(exc).__name__, "message": str(exc)[:200]}


def _read(path):
    if os.path.isdir(path):
        return sorted(os.listdir(path))[:20]
    with open(path, "rb") as handle:
        return handle.read(200).decode("utf-8", "replace")


def _connect(host, port):
    with socket.create_connection((host, port), timeout=1.0):
        return "connected"


def _socket_fds():
    """The worker's channel to the host: every socket among the open descriptors."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if stat.S_ISSOCK(os.fstat(int(name)).st_mode):
                found.append(int(name))
        except OSError:
            pass
    return found


def _frame(message):
    payload = json.dumps(message).encode()
    return struct.pack(">I", len(payload)) + payload


FORGERIES = {
    # a ctx call naming another plugin and customer
    "other-plugin": lambda call: _frame({"v": 1, "id": 900, "kind": "ctx", "call": call, "method": "storage.get_item",
                                         "args": {"key": "x"}, "plugin_id": "city.utilities"}),
    "other-customer": lambda call: _frame({"v": 1, "id": 901, "kind": "ctx", "call": call,
                                           "method": "customer_storage.get_item",
                                           "args": {"key": "accounts", "customer": "someone-else"}}),
    "other-call": lambda call: _frame({"v": 1, "id": 902, "kind": "ctx", "call": call + 1000,
                                       "method": "storage.get_item", "args": {"key": "x"}}),
    "unknown-method": lambda call: _frame({"v": 1, "id": 903, "kind": "ctx", "call": call,
                                           "method": "payments._service.ledger", "args": {}}),
    "old-version": lambda call: _frame({"v": 0, "id": 904, "kind": "result", "call": call, "value": None}),
    "not-json": lambda call: struct.pack(">I", 11) + b"not json!!!",
    "oversized": lambda call: struct.pack(">I", 0xFFFFFFF0) + b"{",
    "forged-result": lambda call: _frame({"v": 1, "id": call, "kind": "result", "call": call,
                                          "value": {"forged": True}, "plugin_id": "city.utilities"}),
}


class Attacks:
    def __init__(self):
        self.call_id = 0

    @hookimpl
    def canopy_storefront_tiles(self, ctx):
        return [Tile(title="Totally harmless")]

    @hookimpl
    def canopy_page(self, ctx, path, query):
        if path == "/junk":
            return {"title": "not a Page"}
        if path == "/bad-tile-page":
            return Page(title="x", html="<p>fine</p>")
        return None

    @hookimpl
    def canopy_search(self, ctx, query):
        return ["not a SearchHit"]

    @hookimpl
    def canopy_api(self, ctx, method, path, body):
        body = body or {}
        if path == "/env":
            return dict(os.environ)
        if path == "/read":
            return {p: _outcome(lambda p=p: _read(p)) for p in body["paths"]}
        if path == "/write":
            return {p: _outcome(lambda p=p: open(p, "w").write("owned")) for p in body["paths"]}
        if path == "/connect":
            return {f"{h}:{p}": _outcome(lambda h=h, p=p: _connect(h, p)) for h, p in body["targets"]}
        if path == "/identity":
            return {"uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid(), "cwd": os.getcwd(),
                    "processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}
        if path == "/forkbomb":
            children, error = 0, None
            for _ in range(5000):
                try:
                    if os.fork() == 0:
                        time.sleep(60)
                        os._exit(0)
                    children += 1
                except OSError as exc:
                    error = type(exc).__name__
                    break
            return {"children": children, "error": error}
        if path == "/alloc":
            hoard, error = [], None
            try:
                while len(hoard) < 1000:
                    # bytes(n) maps zeroed pages without writing them: the address space (what the
                    # limit caps) grows as fast as the kernel hands it out, even on a busy machine.
                    hoard.append(bytes(64 * 1024 * 1024))
            except MemoryError:
                error = "MemoryError"
            allocated = len(hoard) * 64
            hoard.clear()
            return {"allocated_mb": allocated, "error": error}
        if path == "/files":
            handles, error = [], None
            try:
                while len(handles) < 100000:
                    handles.append(open("/dev/null"))
            except OSError as exc:
                error = type(exc).__name__
            count = len(handles)
            for handle in handles:
                handle.close()
            return {"opened": count, "error": error}
        if path == "/loop":
            while True:
                pass
        if path == "/sleep":
            time.sleep(3600)
        if path == "/flood":
            chunk = b"x" * 65536 + b"\n"
            for _ in range(int(body.get("chunks", 800))):
                os.write(1, chunk)
            return {"flooded": True}
        if path == "/exit":
            os._exit(3)
        if path == "/huge":
            return "x" * (3 * 1024 * 1024)
        if path == "/not-json":
            return {1, 2, 3}
        if path == "/forge":
            call = max(int(body.get("call", 1)), 1)
            frame = FORGERIES[body["forgery"]](call)
            for fd in _socket_fds():
                os.write(fd, frame)
            time.sleep(0.5)  # the host should have stopped listening by now
            return {"forged": body["forgery"], "sockets": _socket_fds()}
        if path == "/scopes":
            report = {}
            for name, attempt in (
                ("create_intent", lambda: ctx.payments.create_intent(
                    amount=100, currency="CNY", description="x", idempotency_key="k1")),
                ("require", lambda: ctx.require("payments:create")),
                ("refund", lambda: ctx.payments.refund("pi_x", amount=1, idempotency_key="k2")),
            ):
                try:
                    attempt()
                    report[name] = "allowed"
                except ScopeDenied as exc:
                    report[name] = {"denied": exc.scope, "reason": exc.reason}
            return report
        if path == "/customer":
            return {"customer": ctx.customer.subject if ctx.customer else None,
                    "storage": _outcome(lambda: ctx.customer_storage.get("x"))}
        if path == "/log-flood":
            for index in range(5000):
                ctx.log.warning("line %d", index)
            return {"logged": 5000}
        return {"unknown": path}


plugin = Attacks()
