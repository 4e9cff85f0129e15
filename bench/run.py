"""`make bench`: every benchmark, one after another, then one table per area and the targets check.

    python -m bench.run                 # all
    python -m bench.run pipeline align  # some

Each bench prints its details as it goes and hands back its tables (ours and every
peer, from this run); the run ends with all the tables and one line per documented
target in ``bench/targets.toml``.  Exit status: 0 all targets met, 1 a target missed
or a bench failed, 2 some target could not be measured (``../shared/data`` absent:
those benches say so and skip).
"""
from __future__ import annotations

import importlib
import os
import sys
import time

# One core, as the targets are stated ("x real time on one core").
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from bench.report import finish  # noqa: E402

BENCHES = ["align", "pipeline", "multilingual", "neural", "render", "startup", "live"]  # live: a 10-minute real-time stream


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or BENCHES
    tables, failed = [], []
    for name in names:
        print(f"\n=== bench {name} " + "=" * 60, flush=True)
        t0 = time.perf_counter()
        try:
            mod = importlib.import_module(f"bench.bench_{name}")
            tables += mod.tables([])
        except Exception as e:  # one broken bench must not hide the others; it fails the run
            import traceback

            traceback.print_exc()
            print(f"FAILED: {name}: {type(e).__name__}: {e}")
            failed.append(name)
        print(f"--- {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    return finish(tables, failed)


if __name__ == "__main__":
    sys.exit(main())
