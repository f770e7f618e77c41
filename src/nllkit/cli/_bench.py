"""``nllkit bench``: time nllkit against PyTorch, JAX, naive NumPy and the memory limits.

The work is done by :mod:`nllkit.bench`; this module is the command-line
wiring. The table goes to standard output, the progress line to standard
error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from nllkit import bench
from nllkit.bench._harness import Progress
from nllkit.bench._report import check_writable

NAME = "bench"
#: The one-line summary in ``nllkit --help``.
HELP = "time nllkit against PyTorch, JAX, naive NumPy and the memory limits"

DESCRIPTION = """\
Time nllkit's cross-entropy (forward, and forward + backward), Poisson and
Gaussian NLL against PyTorch (CPU) and JAX (jit) when installed, naive NumPy,
and the memory limits: one read of the input ('read') and one copy of it into
a reused buffer ('copy'). All run in one process, interleaved round-robin in
every repetition, so a noisy machine slows them alike: compare the ratios.
float32, and bfloat16 when ml_dtypes is installed. On 2 cores the full run
takes about 15 to 25 minutes and up to about 8 GiB of memory."""

EPILOG = """\
examples:
  nllkit bench --quick
  nllkit bench --json results.json --plot results.png
  nllkit bench --threads 1
  nllkit bench --fit            # nllkit.fit against scipy per family at n = 1e6
  nllkit bench --fit --quick    # nllkit alone, no peers
  nllkit bench --linear         # linear cross-entropy vs F.cross_entropy(h @ W.T, y); ~10 min"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {value}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``nllkit bench`` to `parser`.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    """
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small shapes and few repetitions: a smoke test of well under a minute",
    )
    parser.add_argument("--json", metavar="FILE", help="also write every result and the environment to FILE")
    parser.add_argument(
        "--plot",
        metavar="FILE.png",
        help="also draw a grouped bar chart of time / limit to FILE.png (needs matplotlib: nllkit[plot])",
    )
    parser.add_argument(
        "--fit",
        action="store_true",
        help="time nllkit.fit against scipy (and statsmodels) per family instead of the losses",
    )
    parser.add_argument(
        "--linear",
        action="store_true",
        help="time nllkit.torch.linear_cross_entropy against F.cross_entropy(h @ W.T, y) instead (needs torch)",
    )
    parser.add_argument(
        "--n",
        metavar="N",
        type=_positive_int,
        default=1_000_000,
        help="with --fit: the sample size (default: 1000000)",
    )
    parser.add_argument(
        "--threads",
        metavar="N",
        type=_positive_int,
        default=2,
        help="threads for nllkit, PyTorch and XLA (default: 2)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the benchmark with the parsed options of ``nllkit bench``.

    Parameters
    ----------
    args : argparse.Namespace
        The options added by :func:`configure`.

    Returns
    -------
    int
        0.

    Raises
    ------
    ValueError
        Bad options, matplotlib missing for ``--plot``, or an output file
        that cannot be written; the caller reports it in one line (exit 2).
    """
    if args.fit and args.linear:
        raise ValueError("--fit and --linear are separate benchmarks: choose one")
    if args.fit:
        return _run_fit(args)
    if args.linear:
        return _run_linear(args)
    # Everything that can fail fails before the minutes of measuring.
    if args.json is not None:
        check_writable("--json", args.json)
    if args.plot is not None:
        bench.require_plotting(args.plot)
    report = bench.run(quick=args.quick, threads=args.threads, progress=sys.stderr)
    print(bench.format_table(report), end="")
    sys.stdout.flush()
    if args.json is not None:
        bench.write_json(report, args.json)
    if args.plot is not None:
        bench.write_plot(report, args.plot)
    return 0


def _run_side(args: argparse.Namespace, option: str, measure: Callable[[Callable[[str], None]], str]) -> int:
    """Run a benchmark other than the losses' (``--fit``, ``--linear``): a progress line, then its table."""
    if args.json is not None or args.plot is not None:
        raise ValueError(f"--json and --plot are for the loss benchmark, not {option}")
    # One rewritten line on a terminal, a line per step in a log.
    status = Progress(sys.stderr)
    table = measure(status.step)
    status.close()
    print(table)
    return 0


def _run_fit(args: argparse.Namespace) -> int:
    from nllkit.bench._fit_cases import format_fit_table, run_fit

    return _run_side(
        args,
        "--fit",
        lambda progress: format_fit_table(
            run_fit(n=args.n, repeat=3 if args.quick else 5, peers=not args.quick, progress=progress)
        ),
    )


def _run_linear(args: argparse.Namespace) -> int:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise ValueError("--linear needs torch: pip install 'nllkit[torch]'")
    from nllkit.bench._linear_cases import format_linear_table, run_linear

    return _run_side(
        args,
        "--linear",
        lambda progress: format_linear_table(
            run_linear(quick=args.quick, threads=args.threads, progress=progress)
        ),
    )
