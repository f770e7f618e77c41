"""Doctest collection: the fused-kernel modules need Numba (the optional
``fast`` extra); without it they are not imported, so not collected."""

import importlib.util

collect_ignore: list[str] = []
if importlib.util.find_spec("numba") is None:
    collect_ignore += [
        "src/nllkit/_kernels/_exp.py",
        "src/nllkit/_kernels/_rows.py",
        "src/nllkit/_kernels/_elementwise.py",
        "src/nllkit/losses/_fused_classification.py",
        "src/nllkit/losses/_fused_elementwise.py",
    ]
