"""The docs stay honest: the hook reference matches the hook specs."""

from __future__ import annotations

import re
from pathlib import Path

from canopy_sdk import hookspecs

DOCS = Path(__file__).resolve().parents[2] / "docs"
HEADING = re.compile(r"^### (canopy_\w+)\(([^)]*)\)\s*$", re.MULTILINE)


def documented_hooks() -> dict[str, tuple[str, ...]]:
    text = (DOCS / "plugins.md").read_text(encoding="utf-8")
    reference = text.split("## Hook reference", 1)[1].split("\n## ", 1)[0]
    return {
        name: tuple(arg.strip() for arg in args.split(",") if arg.strip())
        for name, args in HEADING.findall(reference)
    }


def test_every_hook_is_documented_with_its_arguments():
    assert documented_hooks() == hookspecs.hook_signatures()


def test_reference_lists_hooks_in_spec_order():
    assert tuple(documented_hooks()) == hookspecs.HOOK_NAMES


def test_heading_parser_sees_a_wrong_signature():
    """The check above can fail: a doc with other arguments does not match."""
    documented = documented_hooks()
    documented["canopy_page"] = ("ctx", "path")
    assert documented != hookspecs.hook_signatures()
