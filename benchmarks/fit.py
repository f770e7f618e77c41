"""Time ``nllkit.fitting.fit`` against scipy and statsmodels per family.

``python benchmarks/fit.py [--n N] [--repeat R] [--no-peers] [FAMILY ...]``.

The harness is :mod:`nllkit.bench._fit_cases` (what ``nllkit bench --fit``
runs). From a clone without nllkit installed, ``src/`` is put on the path.
With peers, the full run takes about a minute at n = 1e6 on 2 cores (scipy's
``t.fit`` alone takes ~20 s).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main() -> int:
    """Parse the arguments, run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("families", nargs="*", help="family names (default: all)")
    parser.add_argument("--n", type=int, default=1_000_000, help="sample size (default 1e6)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs; the median is reported (default 5)")
    parser.add_argument("--no-peers", action="store_true", help="time nllkit only")
    args = parser.parse_args()
    try:
        from nllkit.bench._fit_cases import format_fit_table, run_fit
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
        from nllkit.bench._fit_cases import format_fit_table, run_fit
    rows = run_fit(
        n=args.n,
        repeat=args.repeat,
        families=args.families or None,
        peers=not args.no_peers,
        progress=lambda line: print(f"... {line}", file=sys.stderr, flush=True),
    )
    print(format_fit_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
