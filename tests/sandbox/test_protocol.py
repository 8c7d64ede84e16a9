"""Frames: length-prefixed, versioned JSON with a fixed set of fields per kind."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time

import pytest

from sandbox import protocol
from sandbox.protocol import HOST_KINDS, WORKER_KINDS, Channel, ProtocolError


def payload(message: dict) -> bytes:
    return json.dumps(message).encode()


def test_a_frame_is_a_big_endian_length_and_json():
    frame = protocol.encode({"v": 1, "id": 7, "kind": "retire", "reason": "old"})
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    assert protocol.decode(frame[4:], WORKER_KINDS) == {"v": 1, "id": 7, "kind": "retire", "reason": "old"}


@pytest.mark.parametrize("message, complaint", [
    ({"v": 2, "id": 1, "kind": "retire", "reason": ""}, "protocol version"),
    ({"id": 1, "kind": "retire", "reason": ""}, "protocol version"),
    ({"v": 1, "id": -1, "kind": "retire", "reason": ""}, "id"),
    ({"v": 1, "id": "1", "kind": "retire", "reason": ""}, "id"),
    ({"v": 1, "id": 1, "kind": "call", "hook": "x", "ctx": {}, "args": {}}, "may not be sent here"),
    ({"v": 1, "id": 1, "kind": "ctx", "call": 1, "method": "storage.get_item", "args": {}, "plugin_id": "other"},
     "unknown fields: plugin_id"),
    ({"v": 1, "id": 1, "kind": "ctx", "call": 1, "method": "storage.get_item", "args": {}, "customer": "c"},
     "unknown fields: customer"),
    ({"v": 1, "id": 1, "kind": "ctx", "call": "1", "method": "m", "args": {}}, "'call' must be int"),
    ({"v": 1, "id": 1, "kind": "ctx", "call": 1, "method": "m"}, "lacks field 'args'"),
    ({"v": 1, "id": 1, "kind": "log", "call": 1, "level": "critical", "message": "x"}, "unknown level"),
    ({"v": 1, "id": 1, "kind": "log", "call": 1, "level": "info", "message": "x" * 5000}, "over the limit"),
])
def test_a_malformed_or_forged_message_is_refused_with_the_reason(message, complaint):
    with pytest.raises(ProtocolError, match=complaint):
        protocol.decode(payload(message), WORKER_KINDS)


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"\xff\xfe", b'{"v": 1, "id": 1, "kind": "result", "call": 1, "value": NaN}',
                                 b'{"v": 1, "id": 1, "kind": "retire", "reason": "x"'])
def test_bytes_that_are_not_a_json_object_are_refused(raw):
    with pytest.raises(ProtocolError):
        protocol.decode(raw, WORKER_KINDS)


def test_each_side_accepts_only_the_other_sides_kinds():
    call = payload({"v": 1, "id": 1, "kind": "call", "hook": "canopy_page", "ctx": {}, "args": {}})
    assert protocol.decode(call, HOST_KINDS)["kind"] == "call"
    with pytest.raises(ProtocolError):
        protocol.decode(call, WORKER_KINDS)


def test_a_frame_over_the_limit_is_not_sent():
    with pytest.raises(protocol.FrameTooLarge):
        protocol.encode({"v": 1, "id": 1, "kind": "retire", "reason": "x" * 100}, limit=50)


def test_values_that_are_not_json_are_not_sent():
    with pytest.raises(ProtocolError, match="not JSON-able"):
        protocol.encode({"v": 1, "id": 1, "kind": "result", "call": 1, "value": {1, 2}})


@pytest.fixture
def pair():
    host, worker = socket.socketpair()
    yield Channel(host, accepts=WORKER_KINDS, limit=1024), Channel(worker, accepts=HOST_KINDS, limit=1024)
    host.close()
    worker.close()


def test_a_channel_carries_messages_both_ways(pair):
    host, worker = pair
    call = host.send("call", hook="canopy_page", ctx={"locale": "en"}, args={"path": "/"})
    message = worker.receive()
    assert (message["id"], message["hook"], message["args"]) == (call, "canopy_page", {"path": "/"})
    worker.send("result", id=call, call=call, value={"ok": True})
    assert host.receive(time.monotonic() + 5)["value"] == {"ok": True}


def test_an_announced_length_over_the_limit_is_refused_before_reading_it(pair):
    host, worker = pair
    worker.sock.sendall(struct.pack(">I", 10_000_000))
    with pytest.raises(protocol.FrameTooLarge, match="announced"):
        host.receive(time.monotonic() + 5)


def test_receiving_stops_at_the_deadline(pair):
    host, worker = pair
    worker.sock.sendall(struct.pack(">I", 50) + b'{"v": 1')  # half a frame, then nothing
    with pytest.raises(protocol.Deadline):
        host.receive(time.monotonic() + 0.2)


def test_a_closed_peer_is_reported(pair):
    host, worker = pair
    worker.close()
    with pytest.raises(protocol.ChannelClosed):
        host.receive(time.monotonic() + 5)


def test_frames_arriving_together_are_received_one_at_a_time(pair):
    host, worker = pair
    frames = b"".join(protocol.encode({"v": 1, "id": n, "kind": "log", "call": 1, "level": "info", "message": f"line {n}"})
                      for n in (1, 2, 3))
    worker.sock.sendall(frames)  # one write: the reader's first recv gets all three

    assert [host.receive(time.monotonic() + 5)["message"] for _ in range(3)] == ["line 1", "line 2", "line 3"]
    with pytest.raises(protocol.Deadline):
        host.receive(time.monotonic() + 0.05)


def test_a_frame_arriving_byte_by_byte_is_put_together(pair):
    host, worker = pair
    frame = protocol.encode({"v": 1, "id": 7, "kind": "result", "call": 7, "value": "上海分行 " * 20})

    def trickle():
        for n in range(len(frame)):
            worker.sock.sendall(frame[n:n + 1])
            time.sleep(0.0005)

    thread = threading.Thread(target=trickle)
    thread.start()
    assert host.receive(time.monotonic() + 5)["value"] == "上海分行 " * 20
    thread.join()


def test_a_frame_larger_than_one_read_is_received_whole():
    host, worker = socket.socketpair()
    try:
        sender = Channel(worker, accepts=HOST_KINDS)
        receiver = Channel(host, accepts=WORKER_KINDS)
        value = "x" * (3 * Channel.CHUNK + 11)
        thread = threading.Thread(target=sender.send, args=("result",), kwargs={"id": 1, "call": 1, "value": value})
        thread.start()
        assert receiver.receive(time.monotonic() + 5)["value"] == value
        thread.join()
    finally:
        host.close()
        worker.close()
