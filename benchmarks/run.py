"""Run nllkit's benchmarks: ``python benchmarks/run.py [--quick] [--json FILE] [--plot FILE.png] [--threads N]``.

The same as ``nllkit bench``: the harness is :mod:`nllkit.bench`. From a
clone without nllkit installed, ``src/`` is put on the path.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    """Run ``nllkit bench`` with this script's arguments and return its exit code."""
    try:
        from nllkit.cli import main as nllkit_main
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
        from nllkit.cli import main as nllkit_main
    return nllkit_main(["bench", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
