"""The worker: the process inside the jail that runs one partner plugin.

Started by the host's supervisor with one end of a socket pair. Before importing any
plugin code it applies its resource limits and (when started as root) becomes the
plugin's own user id, for good. Then it imports the plugin from its folder, says which
hooks it implements (``ready``), and serves one hook call at a time: ``call`` in,
any number of ``ctx`` questions out (each answered before the next), then ``result``
or ``error``. A page from a template is rendered here (:mod:`sandbox.pages`) and goes
back as HTML. Anything unexpected from the host ends the worker.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import socket
import sys
from typing import Any, Callable

from . import protocol, wire
from .remote import RemoteContext

#: The worker asks to be replaced once it has used this share of its CPU-time limit, so the
#: limit never kills a healthy worker mid-call.
RETIRE_AT = 0.8
PR_SET_NO_NEW_PRIVS = 38


def apply_limits(limits: dict[str, int]) -> None:
    """Lower this process's resource limits (soft = hard: the plugin cannot raise them)."""
    for name, value in (("RLIMIT_AS", limits["memory_bytes"]), ("RLIMIT_CPU", limits["cpu_seconds"]),
                        ("RLIMIT_NOFILE", limits["open_files"]), ("RLIMIT_NPROC", limits["processes"]),
                        ("RLIMIT_FSIZE", limits["file_bytes"]), ("RLIMIT_CORE", 0)):
        resource.setrlimit(getattr(resource, name), (value, value))


def drop_privileges(uid: int | None) -> None:
    """Become ``uid`` (no groups) and forbid gaining privileges again (setuid files, file caps)."""
    if uid is not None and os.getuid() == 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        if os.getuid() != uid or os.geteuid() != uid:
            raise SystemExit("could not drop privileges")
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    except OSError:
        pass


def load_plugin(folder: str) -> tuple[str, dict[str, Callable[..., Any]]]:
    """Import the plugin in ``folder``; return its id and its hook implementations by hook name."""
    import pluggy
    from canopy_sdk import hookspecs
    from canopy_sdk.loading import import_entry
    from canopy_sdk.manifest import load_manifest
    from canopy_sdk.markers import PROJECT_NAME

    manifest = load_manifest(folder)
    plugin = import_entry(folder, manifest)
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(plugin, name=manifest.id)
    impls: dict[str, Callable[..., Any]] = {}
    for caller in manager.get_hookcallers(plugin) or []:
        if caller.spec is None or caller.name not in hookspecs.HOOK_NAMES:
            raise RuntimeError(f"unknown hook {caller.name}; see canopy_sdk.hookspecs")
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin:
                impls[caller.name] = _accepting(impl.function, tuple(impl.argnames))
    return manifest.id, impls


def _accepting(function: Callable[..., Any], accepts: tuple[str, ...]) -> Callable[..., Any]:
    # pluggy lets an implementation take fewer arguments than its spec offers.
    return lambda **kwargs: function(**{name: kwargs[name] for name in accepts})


class Worker:
    """Serves hook calls for one plugin over ``channel``; renders its page templates (``folder``)."""

    def __init__(self, channel: protocol.Channel, impls: dict[str, Callable[..., Any]], cpu_limit: int,
                 folder: str | None = None) -> None:
        self.channel = channel
        self.impls = impls
        self.cpu_limit = cpu_limit
        self.folder = folder
        self._call: int | None = None
        self._templates: Any = None
        self._version: str | None = None

    def templates(self) -> Any:
        """The plugin's template environment (the SDK's sandboxed, autoescaping one), made once."""
        if self._templates is None:
            from canopy_sdk import rendering

            if self.folder is None:
                raise RuntimeError("this worker has no plugin folder to render templates from")
            self._templates = rendering.template_environment(self.folder)
        return self._templates

    def version(self) -> str | None:
        """The version of the plugin this worker runs (from its manifest), read once."""
        if self._version is None and self.folder is not None:
            from canopy_sdk.manifest import load_manifest

            self._version = load_manifest(self.folder).version
        return self._version

    def render(self, value: Any, facts: dict[str, Any]) -> Any:
        """A ``canopy_page`` result with its template rendered here, within the call's budget
        (the host never renders a sandboxed plugin's template); other values unchanged."""
        from canopy_sdk.types import Page

        from . import pages

        if type(value) is not Page or value.template is None:
            return value
        branch = facts["branch"]
        helpers = pages.template_helpers(facts["plugin_id"], {"code": branch.code, "name": branch.name},
                                         facts["locale"], self.version())
        return Page(title=value.title, html=pages.render(self.templates(), value, helpers), status=value.status)

    def _ask(self, method: str, args: dict[str, Any]) -> Any:
        if self._call is None:
            raise RuntimeError("ctx used outside a hook call")
        self.channel.send("ctx", call=self._call, method=method, args=args)
        answer = self.channel.receive()
        if answer["kind"] == "ctx_result":
            return answer["value"]
        if answer["kind"] == "ctx_error":
            raise wire.error_from_wire(answer["error"])
        raise SystemExit(f"host sent {answer['kind']!r} while a ctx answer was due")

    def _log(self, level: str, message: str) -> None:
        if self._call is not None:
            self.channel.send("log", call=self._call, level=level, message=message[: protocol.MAX_LOG_CHARS])

    def serve_one(self, message: dict[str, Any]) -> None:
        """Run one ``call`` message and answer it."""
        hook = message["hook"]
        self._call = message["id"]
        try:
            function = self.impls.get(hook)
            if function is None:
                raise wire.HookFailed(f"the plugin does not implement {hook}")
            facts = wire.ctx_from_wire(message["ctx"])
            ctx = RemoteContext(dict(facts), self._ask, self._log)
            value = function(ctx=ctx, **wire.args_from_wire(hook, message["args"]))
            if hook == "canopy_page":
                value = self.render(value, facts)
            answer = wire.result_to_wire(hook, value)
        except protocol.ProtocolError:
            raise
        except BaseException as exc:  # the plugin's failure (even SystemExit) is an answer, not our exit
            self.channel.send("error", id=self._call, call=self._call, error=wire.error_to_wire(exc))
        else:
            try:
                self.channel.send("result", id=self._call, call=self._call, value=answer)
            except protocol.ChannelClosed:
                raise
            except protocol.ProtocolError as exc:  # too large, or not JSON: the hook's fault, not ours
                self.channel.send("error", id=self._call, call=self._call,
                                  error=wire.error_to_wire(wire.errors.InvalidResult(f"{hook}: {exc}")))
        finally:
            self._call = None

    def run(self) -> None:
        """Serve calls until the host closes the channel."""
        while True:
            try:
                message = self.channel.receive()
            except protocol.ChannelClosed:
                return
            if message["kind"] != "call":
                raise SystemExit(f"host sent {message['kind']!r} outside a call")
            self.serve_one(message)
            used = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
            if used >= RETIRE_AT * self.cpu_limit:
                self.channel.send("retire", reason=f"used {used:.0f} s of its {self.cpu_limit} s CPU limit")
                return


def main(argv: list[str] | None = None) -> None:
    """The worker's entry point: ``argv[-1]`` is its JSON configuration (see sandbox.jail)."""
    config = json.loads((argv or sys.argv)[-1])
    apply_limits(config["limits"])
    drop_privileges(config["uid"])
    sock = socket.socket(fileno=config["fd"])
    channel = protocol.Channel(sock, accepts=protocol.HOST_KINDS)
    try:
        plugin_id, impls = load_plugin(config["plugin_dir"])
        if plugin_id != config["plugin_id"]:
            raise RuntimeError(f"the folder holds plugin {plugin_id!r}, not {config['plugin_id']!r}")
        worker = Worker(channel, impls, config["limits"]["cpu_seconds"], config["plugin_dir"])
        if "canopy_page" in impls:
            worker.templates()  # Jinja imported now, not inside the first page's budget
    except BaseException as exc:
        channel.send("failed", error=f"{type(exc).__name__}: {exc}"[:2000])
        return
    channel.send("ready", hooks=sorted(impls))
    worker.run()
