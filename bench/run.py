"""`make bench`: every benchmark, one after another, each printing its figures and its peers'.

    python -m bench.run                 # all
    python -m bench.run pipeline align  # some

Benches that need ../shared/data say so and skip when it is absent.
"""
from __future__ import annotations

import importlib
import os
import sys
import time

# One core, as the targets are stated ("x real time on one core").
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

BENCHES = ["pipeline", "align", "multilingual", "neural", "render"]


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or BENCHES
    failed = []
    for name in names:
        module = f"bench.bench_{name}"
        print(f"\n=== bench {name} " + "=" * 60, flush=True)
        t0 = time.perf_counter()
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            print(f"skipped: {module} not available ({e})")
            continue
        try:
            mod.main([])
        except Exception as e:  # one broken bench must not hide the others
            print(f"FAILED: {name}: {type(e).__name__}: {e}")
            failed.append(name)
        print(f"--- {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
