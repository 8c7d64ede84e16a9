"""The wire protocol between the host and a sandboxed plugin worker (docs/sandbox.md).

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON: one
object with the protocol version ``v``, a message ``id`` and a ``kind``. Every message
kind has a fixed set of fields; anything else — a frame too large, bytes that are not
JSON, an unknown kind or field, a wrong type — is a :class:`ProtocolError`, and the host
treats the worker that sent it as broken.

This module is imported on both sides of the boundary, so it uses the standard library only.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import time
from collections.abc import Mapping
from typing import Any

#: The protocol version every frame carries; a frame of another version is refused.
VERSION = 1
HEADER = struct.Struct(">I")
#: The largest frame either side sends or accepts (an API answer may be 1 MiB of JSON).
MAX_FRAME_BYTES = 2 * 1024 * 1024
#: The largest log line a worker may send; longer ones are refused as malformed.
MAX_LOG_CHARS = 2000

_STR, _INT, _OBJ, _ANY, _LIST, _OPT_STR = "str", "int", "object", "any", "list", "str|null"

#: kind → {field: type}; ``v``, ``id`` and ``kind`` are common to all.
#: Worker → host:
WORKER_KINDS: dict[str, dict[str, str]] = {
    "ready": {"hooks": _LIST},                        # the plugin imported; the hooks it implements
    "failed": {"error": _STR},                        # the plugin could not be imported
    "result": {"call": _INT, "value": _ANY},         # a hook's answer
    "error": {"call": _INT, "error": _OBJ},          # a hook raised
    "ctx": {"call": _INT, "method": _STR, "args": _OBJ},  # a ctx call made while serving ``call``
    "log": {"call": _INT, "level": _STR, "message": _STR},
    "retire": {"reason": _STR},                       # the worker asks to be replaced (CPU budget used up)
}
#: Host → worker:
HOST_KINDS: dict[str, dict[str, str]] = {
    "call": {"hook": _STR, "ctx": _OBJ, "args": _OBJ},
    "ctx_result": {"value": _ANY},
    "ctx_error": {"error": _OBJ},
}
LOG_LEVELS = ("debug", "info", "warning", "error")


class ProtocolError(Exception):
    """A frame broke the protocol: too large, not JSON, unknown kind or field, wrong version."""


class FrameTooLarge(ProtocolError):
    """A frame is larger than :data:`MAX_FRAME_BYTES`."""


class ChannelClosed(ProtocolError):
    """The other side closed the socket (for a worker: it exited or was killed)."""


class Deadline(TimeoutError):
    """No complete frame arrived before the deadline."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# One encoder and one decoder for the process: ``json.dumps``/``json.loads`` with options build a
# new one on every call, which costs as much as encoding a small frame.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def encode(message: Mapping[str, Any], *, limit: int = MAX_FRAME_BYTES) -> bytes:
    """Return ``message`` as one frame, or raise :class:`FrameTooLarge` / :class:`ProtocolError`."""
    try:
        payload = _ENCODER.encode(message).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"message is not JSON-able: {exc}") from None
    if len(payload) > limit:
        raise FrameTooLarge(f"a {message.get('kind')!r} frame of {len(payload)} bytes is over the limit of {limit}")
    return HEADER.pack(len(payload)) + payload


def decode(payload: bytes, kinds: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """Parse one frame's payload and check it against ``kinds`` (what the sender may send)."""
    try:
        message = _DECODER.decode(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"frame is not UTF-8 JSON: {exc.__class__.__name__}") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"frame must be a JSON object, got {type(message).__name__}")
    if message.get("v") != VERSION:
        raise ProtocolError(f"frame has protocol version {message.get('v')!r}; this side speaks {VERSION}")
    if type(message.get("id")) is not int or message["id"] < 0:
        raise ProtocolError("frame id must be a non-negative integer")
    kind = message.get("kind")
    if kind not in kinds:
        raise ProtocolError(f"frame kind {kind!r} may not be sent here")
    fields = kinds[kind]
    extra = set(message) - set(fields) - {"v", "id", "kind"}
    if extra:
        # This is what stops a worker from naming another plugin, customer or branch: no
        # message has a field for it, and a frame with one is refused as forged.
        raise ProtocolError(f"{kind!r} frame has unknown fields: {', '.join(sorted(extra))}")
    for name, expected in fields.items():
        if name not in message:
            raise ProtocolError(f"{kind!r} frame lacks field {name!r}")
        if not _is(message[name], expected):
            raise ProtocolError(f"{kind!r} frame field {name!r} must be {expected}")
    if kind == "log" and (message["level"] not in LOG_LEVELS or len(message["message"]) > MAX_LOG_CHARS):
        raise ProtocolError("log frame has an unknown level or a message over the limit")
    return message


def _is(value: Any, expected: str) -> bool:
    if expected == _ANY:
        return True
    if expected == _STR:
        return isinstance(value, str)
    if expected == _OPT_STR:
        return value is None or isinstance(value, str)
    if expected == _INT:
        return type(value) is int
    if expected == _OBJ:
        return isinstance(value, dict)
    if expected == _LIST:
        return isinstance(value, list)
    raise AssertionError(expected)


class Channel:
    """Frames over one connected stream socket, with deadlines on receiving.

    Reads are buffered: one ``recv`` usually brings a whole frame (header and body), and a
    deadline is waited for with one ``poll``. Not thread-safe: one side of a worker's socket
    is used by one thread at a time.
    """

    #: What one ``recv`` asks for at least (a small frame and the next one's header come together)
    #: and at most (a large frame comes in pieces of this size).
    CHUNK, MOST = 1 << 16, 1 << 20

    def __init__(self, sock: socket.socket, *, accepts: Mapping[str, Mapping[str, str]],
                 limit: int = MAX_FRAME_BYTES) -> None:
        self.sock = sock
        self.accepts = accepts
        self.limit = limit
        self._next_id = 0
        self._buffer = bytearray()
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)

    def next_id(self) -> int:
        """A fresh message id for this side of the channel."""
        self._next_id += 1
        return self._next_id

    def send(self, kind: str, *, id: int | None = None, **fields: Any) -> int:
        """Send one message; return its id."""
        message_id = self.next_id() if id is None else id
        frame = encode({"v": VERSION, "id": message_id, "kind": kind, **fields}, limit=self.limit)
        try:
            self.sock.sendall(frame)
        except OSError as exc:
            raise ChannelClosed(f"cannot send: {exc}") from None
        return message_id

    def receive(self, deadline: float | None = None) -> dict[str, Any]:
        """Return the next message; ``deadline`` is a :func:`time.monotonic` time or None (wait forever)."""
        buffer = self._buffer
        while len(buffer) < HEADER.size:
            self._fill(HEADER.size - len(buffer), deadline)
        (length,) = HEADER.unpack_from(buffer)
        if length > self.limit:
            raise FrameTooLarge(f"announced frame of {length} bytes is over the limit of {self.limit}")
        end = HEADER.size + length
        while len(buffer) < end:
            self._fill(end - len(buffer), deadline)
        payload = bytes(buffer[HEADER.size:end])
        del buffer[:end]
        return decode(payload, self.accepts)

    def _fill(self, missing: int, deadline: float | None) -> None:
        """Append what the socket has (at least one byte) to the buffer, waiting until ``deadline``."""
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._poll.poll(remaining * 1000.0):
                raise Deadline("no answer before the deadline")
        try:
            chunk = self.sock.recv(min(max(missing, self.CHUNK), self.MOST))
        except OSError as exc:
            raise ChannelClosed(f"cannot receive: {exc}") from None
        if not chunk:
            raise ChannelClosed("the other side closed the connection")
        self._buffer += chunk

    def close(self) -> None:
        """Close the socket."""
        try:
            self.sock.close()
        except OSError:
            pass
