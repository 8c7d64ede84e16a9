"""Prometheus metrics at ``/metrics`` (text exposition format 0.0.4).

Counters are per process: with several gunicorn workers each scrape sees the worker that
answered it, so scrape every worker, or sum over them by the ``instance`` label. That holds
for the sandbox's counts too: each host process owns its own workers (docs/sandbox.md).
"""

from __future__ import annotations

from collections import Counter

from flask import Blueprint, Response, current_app

from .runtime import get_runtime
from .storefront.shell import event_counts

bp = Blueprint("metrics", __name__)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_metrics() -> str:
    """The current metrics of this process as Prometheus text."""
    runtime = get_runtime()
    lines = [
        "# HELP canopy_plugins Plugins found by this process, by whether they were started.",
        "# TYPE canopy_plugins gauge",
        f'canopy_plugins{{state="loaded"}} {len(runtime.plugins)}',
        f'canopy_plugins{{state="refused"}} {len(runtime.refused)}',
        "# HELP canopy_plugin_calls_total Hook calls of each plugin, by outcome.",
        "# TYPE canopy_plugin_calls_total counter",
    ]
    for (plugin_id, hook, outcome), count in sorted(runtime.invoker.snapshot().items()):
        lines.append(
            f'canopy_plugin_calls_total{{plugin="{_label(plugin_id)}",hook="{_label(hook)}",outcome="{_label(outcome)}"}} {count}'
        )
    # By plugin and kind only: event names are the plugins' own, so as labels they would be unbounded.
    bridge: Counter = Counter()
    for (plugin_id, name), count in event_counts(current_app).items():
        bridge[(plugin_id, "ignored" if name == "canopy.ignored" else "track")] += count
    lines += [
        "# HELP canopy_bridge_events_total Events of mini-program pages through the bridge: track() calls, and the "
        "shell's reports of messages it ignored.",
        "# TYPE canopy_bridge_events_total counter",
        *(f'canopy_bridge_events_total{{plugin="{_label(plugin_id)}",kind="{kind}"}} {count}'
          for (plugin_id, kind), count in sorted(bridge.items())),
    ]
    lines += sandbox_metrics(runtime.sandbox.status())
    return "\n".join(lines) + "\n"


#: The sandbox's counts per plugin: (metric, type, help, the status field it reads).
SANDBOX_METRICS = (
    ("canopy_sandbox_workers", "gauge",
     "Worker processes of each sandboxed plugin in this process, running or starting.", "workers"),
    ("canopy_sandbox_worker_starts_total", "counter", "Worker processes of each sandboxed plugin this process started.",
     "starts"),
    ("canopy_sandbox_faults_total", "counter", "Faults of each sandboxed plugin's workers in this process: overruns, "
     "deaths, protocol violations, failed starts.", "faults"),
    ("canopy_sandbox_disabled", "gauge", "1 while this process refuses a sandboxed plugin's calls after too many "
     "faults, else 0.", "disabled"),
)


def sandbox_metrics(statuses: list[dict[str, object]]) -> list[str]:
    """The lines of the sandbox's per-plugin counts, from ``SandboxHost.status()``. The only
    label is the plugin id: fault reasons are free text and stay in the log and the registry."""
    lines: list[str] = []
    for name, kind, text, field in SANDBOX_METRICS:
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        for status in sorted(statuses, key=lambda found: str(found["plugin"])):
            value = status[field]
            count = int(value is not None) if field == "disabled" else int(value)  # type: ignore[call-overload]
            lines.append(f'{name}{{plugin="{_label(str(status["plugin"]))}"}} {count}')
    return lines


@bp.get("/metrics")
def metrics():
    """This process's metrics."""
    return Response(render_metrics(), mimetype="text/plain; version=0.0.4")
