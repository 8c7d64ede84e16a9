"""Prometheus metrics at ``/metrics`` (text exposition format 0.0.4).

Counters are per process: with several gunicorn workers each scrape sees the worker that
answered it, so scrape every worker, or sum over them by the ``instance`` label.
"""

from __future__ import annotations

from flask import Blueprint, Response

from .runtime import get_runtime

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
    return "\n".join(lines) + "\n"


@bp.get("/metrics")
def metrics():
    """This process's metrics."""
    return Response(render_metrics(), mimetype="text/plain; version=0.0.4")
