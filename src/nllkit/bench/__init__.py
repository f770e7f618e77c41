"""The benchmark harness behind ``nllkit bench``.

nllkit's cross-entropy (forward, and forward + backward), Poisson and Gaussian
NLL are timed in one process against PyTorch's CPU functions and JAX's
``jit`` (when installed), against naive NumPy, and against the memory limits:
one read of the input (``read``) and one copy of it into a reused buffer
(``copy``). Implementations are interleaved round-robin within each
repetition, so a noisy machine slows all of them alike; only ratios taken in
one run are meaningful.

The modules, one idea each:

* ``_env``: thread settings and the optional peers (PyTorch, JAX, ml_dtypes);
* ``_cases``: the workloads, cases and implementations;
* ``_memory``: peak extra memory of one call;
* ``_harness``: warm-up, interleaved timing, results;
* ``_report``: the text table, the JSON file and the bar chart.

Examples
--------
>>> from nllkit import bench
>>> report = bench.run(quick=True, progress=None)  # doctest: +SKIP
>>> print(bench.format_table(report))  # doctest: +SKIP
"""

from nllkit.bench._harness import Report, Result, Settings, Skip, run
from nllkit.bench._report import PLOT_HINT, format_table, require_plotting, to_json, write_json, write_plot

__all__ = [
    "PLOT_HINT",
    "Report",
    "Result",
    "Settings",
    "Skip",
    "format_table",
    "require_plotting",
    "run",
    "to_json",
    "write_json",
    "write_plot",
]
