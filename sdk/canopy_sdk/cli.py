"""``canopy-sdk``: the partner developer's command line (``canopy-sdk validate PATH``)."""

from __future__ import annotations

import argparse
import sys

from .manifest import ManifestError, load_manifest


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="canopy-sdk", description="Tools for Canopy mini-program authors.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("validate", help="check a plugin folder's plugin.toml")
    check.add_argument("path")
    args = parser.parse_args(argv)
    try:
        manifest = load_manifest(args.path)
    except ManifestError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{manifest.id} {manifest.version}: manifest OK")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
