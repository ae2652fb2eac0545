"""`python -m bench [name …]`: runs every bench module (one with a top-level main()) in bench/, or those named."""

from __future__ import annotations

import ast
import importlib
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOT_BENCHES = {"__init__", "__main__", "harness", "bare_app"}


def bench_names() -> list[str]:
    """Modules with a top-level `def main`, found without importing them (importing may build an app)."""
    names = []
    for path in sorted(HERE.glob("*.py")):
        if path.stem in NOT_BENCHES:
            continue
        tree = ast.parse(path.read_text(), str(path))
        if any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body):
            names.append(path.stem)
    return names


def main(argv: list[str]) -> int:
    available = bench_names()
    chosen = argv or available
    unknown = [name for name in chosen if name not in available]
    if unknown:
        print(f"unknown bench {', '.join(unknown)}; available: {', '.join(available)}", file=sys.stderr)
        return 2
    failed = []
    for name in chosen:
        print(f"== bench.{name}", flush=True)
        started = time.monotonic()
        try:
            importlib.import_module(f"bench.{name}").main()
        except Exception:  # one broken bench must not hide the others' figures
            traceback.print_exc()
            failed.append(name)
        print(f"== bench.{name} done in {time.monotonic() - started:.0f} s\n", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
