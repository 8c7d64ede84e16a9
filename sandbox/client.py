"""The host's side of one hook call to a sandboxed worker.

:func:`call_hook` borrows a worker from the plugin's supervisor, sends the call, answers
the worker's ``ctx`` questions through a callback (the host checks each one), and returns
the worker's answer. A worker that runs past the deadline is killed — that is the only
way to stop Python code — and a worker that dies or breaks the protocol is a fault; the
supervisor counts both and restarts with backoff.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

from . import protocol, wire
from .supervisor import PluginSupervisor, WorkerProcess

log = logging.getLogger("canopy.sandbox")

#: ctx questions one hook call may ask; more is a flood, and a fault.
MAX_CTX_CALLS = 1000
#: log lines one hook call may send; more are dropped (counted once).
MAX_LOG_LINES = 100
_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

#: answers a ctx question: (method, args) → JSON value, or raises an SDK error to send back.
CtxAnswer = Callable[[str, Mapping[str, Any]], Any]


class WorkerFault(Exception):
    """The worker overran, died or broke the protocol during the call; it was killed and counted."""


class CallTimeout(WorkerFault, TimeoutError):
    """The worker gave no answer within the call's budget."""


class HookRaised(Exception):
    """The plugin's hook raised; ``error`` is its wire form (see :func:`sandbox.wire.error_from_wire`)."""

    def __init__(self, error: Mapping[str, Any]) -> None:
        self.error = dict(error)
        super().__init__(str(error.get("message", "")))


class _Violation(Exception):
    pass


def call_hook(supervisor: PluginSupervisor, hook: str, facts: Mapping[str, Any], args: Mapping[str, Any],
              *, deadline: float, answer: CtxAnswer) -> Any:
    """Call ``hook`` of ``supervisor``'s plugin; return the worker's JSON answer.

    Raises :class:`HookRaised` (the hook raised), :class:`WorkerFault` (overran, died,
    broke the protocol) or :class:`~sandbox.supervisor.SandboxUnavailable` (no worker).
    """
    for _ in range(3):  # a worker that retired after its last call is replaced, not counted
        worker = supervisor.acquire(deadline)
        outcome = _call_once(supervisor, worker, hook, facts, args, deadline, answer)
        if outcome is not _RETIRED:
            return outcome
    raise WorkerFault(f"plugin {supervisor.plugin_id}: workers keep retiring")


_RETIRED = object()


def _call_once(supervisor: PluginSupervisor, worker: WorkerProcess, hook: str, facts: Mapping[str, Any],
               args: Mapping[str, Any], deadline: float, answer: CtxAnswer) -> Any:
    try:
        call_id = worker.channel.send("call", hook=hook, ctx=dict(facts), args=dict(args))
    except protocol.ChannelClosed:
        raise _fault(supervisor, worker, f"worker {worker.describe_exit()} before the call") from None
    except protocol.ProtocolError:
        # The call itself does not fit in a frame: the worker is fine, the arguments are not.
        supervisor.release(worker)
        raise
    ctx_calls = logs = 0
    try:
        while True:
            message = worker.channel.receive(deadline)
            kind = message["kind"]
            if kind in ("result", "error") and message["call"] == call_id and message["id"] == call_id:
                break
            if kind == "retire" and ctx_calls == logs == 0:
                log.info("plugin %s: worker %d retires (%s)", supervisor.plugin_id, worker.pid, message["reason"])
                supervisor.retire(worker)
                return _RETIRED
            if kind == "ctx" and message["call"] == call_id:
                ctx_calls += 1
                if ctx_calls > MAX_CTX_CALLS:
                    raise _Violation(f"more than {MAX_CTX_CALLS} ctx calls in one hook call")
                _answer_ctx(supervisor.plugin_id, worker, message, answer)
            elif kind == "log" and message["call"] == call_id:
                logs += 1
                if logs <= MAX_LOG_LINES:
                    log.log(_LOG_LEVELS[message["level"]], "plugin %s: %s", supervisor.plugin_id, message["message"],
                            extra={"plugin": supervisor.plugin_id, "hook": hook})
                elif logs == MAX_LOG_LINES + 1:
                    log.warning("plugin %s: more than %d log lines in one call; the rest are dropped",
                                supervisor.plugin_id, MAX_LOG_LINES, extra={"plugin": supervisor.plugin_id})
            else:
                raise _Violation(f"unexpected {kind!r} frame (call {message.get('call')!r}) while serving call {call_id}")
    except protocol.Deadline:
        raise _fault(supervisor, worker, f"no answer to {hook} within its budget; worker killed",
                     CallTimeout) from None
    except protocol.ChannelClosed:
        raise _fault(supervisor, worker, f"worker {worker.describe_exit()} during {hook}") from None
    except (protocol.ProtocolError, _Violation) as exc:
        raise _fault(supervisor, worker, f"worker broke the protocol during {hook}: {exc}") from None
    except BaseException:
        supervisor.fault(worker, f"the host's side of {hook} failed; worker stopped to be safe")
        raise
    supervisor.release(worker)
    worker.calls += 1
    if kind == "error":
        raise HookRaised(message["error"])
    return message["value"]


def _answer_ctx(plugin_id: str, worker: WorkerProcess, message: Mapping[str, Any], answer: CtxAnswer) -> None:
    method = message["method"]
    try:
        value = answer(method, message["args"])
    except _Violation:
        raise
    except Exception as exc:
        if wire.ERROR_TYPES.get(type(exc).__name__) is type(exc):
            error = wire.error_to_wire(exc)
        else:  # the host's own failure: logged here, never described to the plugin
            log.exception("plugin %s: the host failed to answer ctx call %s", plugin_id, method,
                          extra={"plugin": plugin_id})
            error = {"type": "host", "message": f"the host could not answer {method}; try again later"}
        worker.channel.send("ctx_error", id=message["id"], error=error)
        return
    worker.channel.send("ctx_result", id=message["id"], value=value)


def _fault(supervisor: PluginSupervisor, worker: WorkerProcess, reason: str,
           cls: type[WorkerFault] = WorkerFault) -> WorkerFault:
    supervisor.fault(worker, reason)
    return cls(f"plugin {supervisor.plugin_id}: {reason}")


def violation(message: str) -> Exception:
    """The exception a ctx answerer raises for a question no honest worker asks (a forged
    or malformed ctx call): the worker is killed and the fault counted."""
    return _Violation(message)


__all__ = ["CallTimeout", "CtxAnswer", "HookRaised", "WorkerFault", "call_hook", "violation"]
