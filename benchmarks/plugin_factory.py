"""Generated mini-programs for the benchmarks, and the temporary apps that load them.

Each generated plugin is a folder as a branch would publish it: ``plugin.toml`` (publisher
kind ``bank`` by default, so it runs in-process; ``partner`` runs it in the sandbox), one module with one hook implementation
(``canopy_storefront_tiles`` returning one :class:`~canopy_sdk.Tile`) and one template.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

MANIFEST = """\
id = "{plugin_id}"
name = {{ zh = "基准插件 {n}", en = "Benchmark plugin {n}" }}
version = "1.0.0"
publisher = {{ kind = "{kind}", id = "{publisher_id}" }}
entry = "{module}:plugin"
scopes = [{scopes}]
pages = [{{ path = "/", title = {{ zh = "首页", en = "Home" }} }}]
zone = {{ slots = ["tile"] }}
keywords = ["benchmark"]
"""

MODULE = '''\
"""Generated benchmark plugin {plugin_id}."""

from canopy_sdk import Tile, hookimpl


class Plugin:
    @hookimpl
    def canopy_storefront_tiles(self, ctx):
        return [Tile(title="Benchmark {n}", subtitle="One generated tile", link="/", badge="new")]


plugin = Plugin()
'''

TEMPLATE = """\
<!doctype html>
<title>Benchmark {n}</title>
<h1>{{{{ title }}}}</h1>
<ul>{{% for item in items %}}<li>{{{{ item }}}}</li>{{% endfor %}}</ul>
"""


def plugin_id(prefix: str, n: int) -> str:
    """The id of generated plugin ``n`` in the set ``prefix``."""
    return f"bench.{prefix}.p{n:04d}"


#: The publisher each kind of generated plugin names.
PUBLISHERS = {"bank": "HQ", "partner": "BENCHCO"}


def generate(root: Path, count: int, prefix: str, scopes: Sequence[str] = (), publisher: str = "bank") -> list[str]:
    """Write ``count`` plugin folders under ``root``; return their ids.

    ``prefix`` keeps the ids (and so the modules' package names) of different sets apart;
    ``scopes`` are what each manifest requests; ``publisher`` is the kind of publisher
    (``bank``: in-process; ``partner``: in the sandbox).
    """
    scope_list = ", ".join(f'"{scope}"' for scope in scopes)
    root.mkdir(parents=True, exist_ok=True)
    ids = []
    for n in range(count):
        pid = plugin_id(prefix, n)
        module = f"bench_{prefix}_p{n:04d}"
        folder = root / f"{prefix}_p{n:04d}"
        (folder / "templates").mkdir(parents=True)
        (folder / "plugin.toml").write_text(MANIFEST.format(plugin_id=pid, n=n, module=module, scopes=scope_list,
                                                                          kind=publisher, publisher_id=PUBLISHERS[publisher]), encoding="utf-8")
        (folder / f"{module}.py").write_text(MODULE.format(plugin_id=pid, n=n), encoding="utf-8")
        (folder / "templates" / "index.html").write_text(TEMPLATE.format(n=n), encoding="utf-8")
        ids.append(pid)
    return ids


def forget_modules(prefix: str) -> int:
    """Drop the generated plugins' modules from ``sys.modules`` so the next load imports them again."""
    from canopy_sdk.loading import package_name

    stem = package_name(f"bench.{prefix}.")
    names = [name for name in sys.modules if name.startswith(stem)]
    for name in names:
        del sys.modules[name]
    return len(names)


SECRET = "benchmark-secret-key-not-for-production-0123456789"


def app_config(instance: Path, plugin_root: Path) -> dict:
    """The configuration of a benchmark app: everything explicit, nothing from the environment
    that could point it at a real database or other plugins."""
    return {
        "INSTANCE_PATH": str(instance),
        "DATABASE_URL": f"sqlite:///{instance / 'canopy.db'}",
        "PLUGIN_PATHS": [str(plugin_root)],
        "LOAD_ENTRY_POINTS": False,
        "SECRET_KEY": SECRET,
    }
