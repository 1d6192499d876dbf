"""Run the benchmarks: every ``benchmarks/bench_*.py`` module's ``main()``, in name order.

``python -m benchmarks``            runs them all;
``python -m benchmarks calendar``   runs only ``bench_calendar`` (names with or without ``bench_``).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import benchmarks


def discover() -> list[str]:
    """Names of the ``bench_*`` modules in this package, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))


def main(argv: list[str] | None = None) -> int:
    wanted = {a if a.startswith("bench_") else f"bench_{a}" for a in (sys.argv[1:] if argv is None else argv)}
    names = [n for n in discover() if not wanted or n in wanted]
    if wanted - set(names):
        print(f"unknown benchmark(s): {', '.join(sorted(wanted - set(names)))}; known: {', '.join(discover())}")
        return 2
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"=== {name} ===", flush=True)
        t0 = time.perf_counter()
        result = module.main()
        if isinstance(result, str):  # a module may return its table instead of printing it
            print(result)
        print(f"--- {name}: {time.perf_counter() - t0:.1f} s\n", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
