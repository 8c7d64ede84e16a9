"""Run the benchmarks: ``python -m benchmarks`` runs all; ``python -m benchmarks NAME…`` runs some."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import time

from . import common

#: name on the command line → module (``http`` is not a module name: it would shadow the standard library's).
BENCHMARKS = {
    "dispatch": "benchmarks.dispatch",
    "http": "benchmarks.http_serving",
    "loading": "benchmarks.loading",
    "oauth": "benchmarks.oauth",
    "payments": "benchmarks.payments",
    "sandbox": "benchmarks.sandbox",
    "storefront": "benchmarks.storefront",
}


def _terminate(signum, _frame):
    # Turn SIGTERM into an exception so every ``finally`` runs (servers are stopped, temp files removed).
    raise SystemExit(128 + signum)


def _python() -> str:
    try:
        return os.path.relpath(sys.executable) if not os.path.relpath(sys.executable).startswith("..") else sys.executable
    except ValueError:
        return sys.executable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run ({', '.join(BENCHMARKS)}); all when none is given")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    names = list(dict.fromkeys(args.names)) or list(BENCHMARKS)
    signal.signal(signal.SIGTERM, _terminate)

    started = time.perf_counter()
    print(f"# Canopy benchmarks: {', '.join(names)}")
    print(f"command: {' '.join([_python(), '-m', 'benchmarks', *sys.argv[1:]])}")
    print(f"started: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    common.print_machine()
    for name in names:
        t0 = time.perf_counter()
        importlib.import_module(BENCHMARKS[name]).run()
        common.note(f"\n({name}: {time.perf_counter() - t0:.1f} s; load average now {common.load_average()})")
    common.note(f"\nall done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
