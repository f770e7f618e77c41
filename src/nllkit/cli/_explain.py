r"""``nllkit explain``: why ``nll_loss(log_softmax(x), y)`` is the cross-entropy.

Tutorials compute ``log_softmax(x)[range(N), target]`` and call its negated
mean the cross-entropy. This command shows every step on a small example
(the classic tutorial one by default, or the user's data): the logits, their
``log_softmax`` with each row's log-sum-exp, the entry each target picks,
weights, label smoothing, the reduction, and the result computed three ways
by nllkit, followed by the equivalent PyTorch and NumPy code.

Every number shown comes from nllkit: the losses from
:func:`nllkit.cross_entropy` and :func:`nllkit.nll_loss`, the intermediate
steps from :func:`nllkit.log_softmax` and :func:`nllkit.logsumexp` (picked by
indexing and summed for display).
"""

from __future__ import annotations

import argparse
import json
import math
import textwrap
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

import nllkit

NAME = "explain"
#: The one-line summary in ``nllkit --help``.
HELP = "show step by step why nll_loss(log_softmax(x), y) is the cross-entropy"

#: The classic tutorial example: its mean loss is 1.4124741554260254 in float32.
DEFAULT_INPUT: list[list[float]] = [
    [0.0054, -0.8030, -0.5758, -0.6518],
    [-0.5518, 0.3904, 0.5296, 0.4973],
    [0.1608, 0.5822, 0.9536, -0.3173],
]
DEFAULT_TARGET: list[int] = [0, 2, 3]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_REDUCTIONS = ("none", "mean", "sum")
_WIDTH = 96  # of the prose; tables and code lines are as wide as the data
_CODE_INDENT = "      "

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


# --- reading the data -------------------------------------------------------------


def _preview(value: Any, limit: int = 40) -> str:
    """A short JSON-like rendering of ``value`` for an error message."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_EXAMPLES = {"--input": "[[1.0, 2.0], [0.5, -1.0]]", "--target": "[0, 2, 3]", "--weight": "[1.0, 2.0, 0.5]"}


def load_json(option: str, text: str) -> Any:
    """Parse the JSON given to a command-line option.

    Parameters
    ----------
    option : str
        The option's name, such as ``'--input'``, for the error message.
    text : str
        The option's value.

    Returns
    -------
    object
        The decoded JSON value (``NaN`` and ``Infinity`` are accepted).

    Raises
    ------
    ValueError
        `text` is not valid JSON; the message names `option`.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{option} must be valid JSON, such as '{_EXAMPLES.get(option, '[1.0, 2.0]')}'; got {text!r} "
            f"({exc.msg} at character {exc.pos})"
        ) from None
    except RecursionError:
        raise ValueError(
            f"{option} must be valid JSON of at most 2 levels of lists; got deeper nesting"
        ) from None


def _shape(option: str, value: Any, what: str, position: tuple[int, ...] = ()) -> tuple[int, ...]:
    """The shape of nested lists of numbers; ValueError for ragged or non-numeric data."""
    if isinstance(value, (list, tuple)):
        if len(position) >= 2:
            raise ValueError(f"{option} must be {what}; got more than 2 levels of lists")
        shapes = [_shape(option, v, what, (*position, i)) for i, v in enumerate(value)]
        for i, s in enumerate(shapes[1:], start=1):
            if s == shapes[0]:
                continue
            if not s or not shapes[0]:
                raise ValueError(
                    f"{option} must be {what}, not a mix of numbers and lists; got a "
                    f"{'number' if not shapes[0] else 'list'} at position {(*position, 0)} and a "
                    f"{'number' if not s else 'list'} at position {(*position, i)}"
                )
            raise ValueError(
                f"{option} must have rows of equal length (not ragged); got {shapes[0][0]} numbers "
                f"in row 0 and {s[0]} in row {i}"
            )
        return (len(value), *(shapes[0] if shapes else ()))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        where = f" at position {position}" if position else ""
        raise ValueError(f"{option} must be {what}; got {_preview(value)}{where}")
    return ()


def _flat(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [v for item in value for v in _flat(item)]
    return [value]


def _positions(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    return [tuple(int(i) for i in p) for p in np.ndindex(*shape)]


def as_float_array(option: str, value: Any, what: str) -> FloatArray:
    """Nested lists of numbers as a float64 array.

    Parameters
    ----------
    option : str
        The option's name, for error messages.
    value : object
        Nested lists (or tuples, or a NumPy array) of numbers.
    what : str
        The expectation, used in error messages (``'a list of rows of numbers'``).

    Returns
    -------
    numpy.ndarray
        float64, of at most 2 dimensions.

    Raises
    ------
    ValueError
        Ragged or non-numeric data (booleans and strings included), or a
        number too large for float64.
    """
    if isinstance(value, np.ndarray):
        value = value.tolist()
    shape = _shape(option, value, what)
    numbers = _flat(value)
    try:
        floats = [float(v) for v in numbers]
    except OverflowError:
        bad = next(i for i, v in enumerate(numbers) if isinstance(v, int) and abs(v) > 1e308)
        raise ValueError(
            f"{option} must hold numbers that fit a float64; got an integer of "
            f"{len(str(numbers[bad]))} digits at position {_positions(shape)[bad]}"
        ) from None
    return np.asarray(floats, dtype=np.float64).reshape(shape)


def as_index_array(option: str, value: Any, what: str) -> IntArray:
    """Nested lists of integers as an int64 array.

    Parameters
    ----------
    option : str
        The option's name, for error messages.
    value : object
        An integer or a list (or NumPy array) of integers.
    what : str
        The expectation, used in error messages.

    Returns
    -------
    numpy.ndarray
        int64.

    Raises
    ------
    ValueError
        Ragged data, non-integers (``2.0`` included: class indices are
        integers), or integers outside the int64 range.
    """
    if isinstance(value, np.ndarray):
        value = value.tolist()
    shape = _shape(option, value, what)
    numbers = _flat(value)
    for position, v in zip(_positions(shape), numbers, strict=True):
        where = f" at position {position}" if position else ""
        if not isinstance(v, int):
            raise ValueError(f"{option} must hold integer class indices; got {_preview(v)}{where}")
        if not _INT64_MIN <= v <= _INT64_MAX:
            raise ValueError(f"{option} must hold integers in the int64 range; got {v}{where}")
    return np.asarray(numbers, dtype=np.int64).reshape(shape)


def _check_data(
    x: FloatArray,
    y: IntArray,
    weight: FloatArray | None,
    ignore_index: Any,
    reduction: Any,
    label_smoothing: Any,
) -> tuple[IntArray, int, float]:
    """Check the shapes and settings; return the target (a scalar for 1-D input)."""
    if x.ndim not in (1, 2) or x.size == 0:
        got = f"the number {_num(x)}" if x.ndim == 0 else f"an empty list (shape {x.shape})"
        raise ValueError(
            f"--input must be a non-empty list of rows of logits (N x C) or one row (C); got {got}"
        )
    num_classes = x.shape[-1]
    if x.ndim == 2:
        if y.shape != (x.shape[0],):
            got = (
                "a single number"
                if y.ndim == 0
                else f"{y.shape[0]} values"
                if y.ndim == 1
                else f"shape {y.shape}"
            )
            indices = "class index" if x.shape[0] == 1 else "class indices"
            raise ValueError(
                f"--target must be a list of {x.shape[0]} {indices}, one per row of --input; got {got}"
            )
    else:
        if y.shape not in ((), (1,)):
            raise ValueError(
                f"--target must be a single class index for a 1-D --input (one sample); got shape {y.shape}"
            )
        y = y.reshape(())
    if weight is not None and weight.shape != (num_classes,):
        raise ValueError(
            f"--weight must be a list of {num_classes} numbers, one per class; got shape {weight.shape}"
        )
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise ValueError(f"--ignore-index must be an integer; got {ignore_index!r}")
    if not _INT64_MIN <= int(ignore_index) <= _INT64_MAX:
        raise ValueError(f"--ignore-index must be in the int64 range; got {ignore_index}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"--reduction must be one of 'none', 'mean', 'sum'; got {reduction!r}")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)):
        raise ValueError(f"--label-smoothing must be a number; got {label_smoothing!r}")
    if not 0.0 <= label_smoothing <= 1.0:  # also rejects NaN
        raise ValueError(f"--label-smoothing must be between 0 and 1; got {label_smoothing}")
    return y, int(ignore_index), float(label_smoothing)


# --- formatting -------------------------------------------------------------------


def _num(v: Any) -> str:
    """A number for display: 6 significant digits."""
    return f"{float(v) + 0.0:.6g}"  # + 0.0 shows -0.0 as 0


def _full(v: Any) -> str:
    """A result in full precision (a list for a vector)."""
    a = np.asarray(v, dtype=np.float64)
    if a.ndim == 0:
        return repr(float(a))
    return "[" + ", ".join(repr(float(e)) for e in a.reshape(-1)) + "]"


def _literal(v: Any) -> str:
    """A Python literal for code: exact floats, ``float('inf')`` where JSON has Infinity."""
    if isinstance(v, list):
        return "[" + ", ".join(_literal(e) for e in v) + "]"
    if isinstance(v, float) and not math.isfinite(v):
        return f"float('{v}')"
    return repr(v)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "   ") -> list[str]:
    """Right-aligned columns (the first left-aligned), two spaces apart."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for r in [header, *rows]:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        lines.append(indent + "  ".join(cells).rstrip())
    return lines


def _para(*parts: str, indent: str = "   ") -> list[str]:
    """Prose joined from `parts` and wrapped to the output width."""
    return textwrap.wrap(" ".join(parts), width=_WIDTH, initial_indent=indent, subsequent_indent="   ")


def _agree(a: Any, b: Any) -> str:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if np.array_equal(a, b, equal_nan=True):
        return "identical"
    if np.allclose(a, b, rtol=1e-12, atol=0.0, equal_nan=True):
        return "equal to rounding: relative difference below 1e-12"
    return "DIFFERENT (this is a bug in nllkit; please report it)"


def _call(fn: str, data: str, options: Sequence[tuple[str, str]]) -> str:
    return f"{fn}({', '.join([data, *(f'{k}={v}' for k, v in options)])})"


# --- the explanation ----------------------------------------------------------------


def explain(
    input: Any = None,
    target: Any = None,
    weight: Any = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> str:
    r"""Explain, step by step, how cross-entropy is the NLL of ``log_softmax``.

    Parameters
    ----------
    input : nested list of numbers, shape (N, C) or (C,), optional
        Logits, read as float64. Default: the classic tutorial example
        (:data:`DEFAULT_INPUT`).
    target : list of int, shape (N,), or int for 1-D `input`, optional
        Class indices in ``[0, C)`` or `ignore_index`. Default:
        :data:`DEFAULT_TARGET`; required when `input` is given.
    weight : list of numbers, shape (C,), optional
        Per-class weights.
    ignore_index : int
        Rows whose target equals it are skipped.
    reduction : {'mean', 'sum', 'none'}
    label_smoothing : float in [0, 1]

    Returns
    -------
    str
        The explanation, as plain text (ASCII) ending with a newline.

    Raises
    ------
    ValueError
        Malformed data or settings; the message names the command-line option
        (``--input``, ``--target``, ...).
    IndexError
        A target outside ``[0, C)`` that is not `ignore_index` (raised by
        :func:`nllkit.cross_entropy`).

    Notes
    -----
    With class-index targets, :math:`\ell_n = -w_{y_n}\log p_{n,y_n}` where
    :math:`\log p = x - \operatorname{logsumexp}(x)` row by row: the negative
    log-likelihood of a categorical distribution, which is the cross-entropy
    between the one-hot target and :math:`p`.

    Examples
    --------
    >>> from nllkit.cli._explain import explain
    >>> text = explain([[2.0, 0.0], [0.0, 1.0]], [0, 1])
    >>> print(text.splitlines()[-1])
        -logp[range(2), y].mean()
    """
    is_default = input is None and target is None
    if input is not None and target is None:
        raise ValueError("--target is required when --input is given (one class index per row)")
    x = as_float_array(
        "--input",
        DEFAULT_INPUT if input is None else input,
        "a list of rows of numbers (N x C) or one row of numbers (C)",
    )
    y = as_index_array(
        "--target", DEFAULT_TARGET if target is None else target, "an integer or a list of integers"
    )
    w = None if weight is None else as_float_array("--weight", weight, "a list of numbers, one per class")
    y, ignore_index, eps = _check_data(x, y, w, ignore_index, reduction, label_smoothing)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _Explanation(x, y, w, ignore_index, reduction, eps, is_default).text()


class _Explanation:
    """Computes the numbers with nllkit and lays out the seven steps."""

    def __init__(
        self,
        x: FloatArray,
        y: IntArray,
        w: FloatArray | None,
        ignore_index: int,
        reduction: str,
        eps: float,
        is_default: bool,
    ) -> None:
        self.x, self.y, self.w = x, y, w
        self.ignore_index, self.reduction, self.eps = ignore_index, reduction, eps
        self.is_default = is_default
        # The tutorial's own setting, whose float32 value is the one tutorials print.
        self.is_tutorial = (
            is_default and w is None and ignore_index == -100 and reduction == "mean" and not eps
        )
        self.dim = x.ndim - 1
        self.one_sample = x.ndim == 1
        # The result first: nllkit validates the targets (IndexError) before anything is shown.
        self.result = nllkit.cross_entropy(x, y, w, ignore_index, reduction, eps)
        self.rows = nllkit.cross_entropy(x, y, w, ignore_index, "none", eps)
        self.total = nllkit.cross_entropy(x, y, w, ignore_index, "sum", eps)
        logp = nllkit.log_softmax(x, self.dim)
        self.nll = nllkit.nll_loss(logp, y, w, ignore_index, reduction)
        # For display, a 1-D input is a batch of one row.
        self.x2 = x.reshape(1, -1) if self.one_sample else x
        self.y1 = y.reshape(-1)
        self.n, self.c = self.x2.shape
        self.logp2 = np.asarray(logp, dtype=np.float64).reshape(self.n, self.c)
        self.lse1 = np.asarray(nllkit.logsumexp(x, self.dim), dtype=np.float64).reshape(self.n)
        self.ignored = self.y1 == ignore_index
        safe_y = np.where(self.ignored, 0, self.y1)
        self.picked = self.logp2[np.arange(self.n), safe_y]
        wc = np.ones(self.c) if w is None else w
        self.w_y = np.where(self.ignored, 0.0, wc[safe_y])
        self.uniform = np.where(self.ignored, 0.0, (eps / self.c) * -(wc * self.logp2).sum(axis=1))
        self.rows1 = np.asarray(self.rows, dtype=np.float64).reshape(self.n)

    # -- helpers -------------------------------------------------------------------------

    def _options(self, *, weight: str, smoothing: bool = True) -> list[tuple[str, str]]:
        """The non-default keyword arguments, as ``(name, source)`` pairs."""
        opts = []
        if self.w is not None:
            opts.append(("weight", weight))
        if self.ignore_index != -100:
            opts.append(("ignore_index", str(self.ignore_index)))
        if self.reduction != "mean":
            opts.append(("reduction", repr(self.reduction)))
        if smoothing and self.eps > 0:
            opts.append(("label_smoothing", repr(self.eps)))
        return opts

    def _row_label(self, n: int) -> str:
        return "-" if self.one_sample else str(n)

    def _class_header(self) -> list[str]:
        return ["row"] + [f"class {c}" for c in range(self.c)]

    # -- the steps -------------------------------------------------------------------------

    def text(self) -> str:
        lines = self._intro()
        steps = (
            self._data,
            self._log_softmax,
            self._pick,
            self._losses,
            self._reduce,
            self._result,
            self._code,
        )
        for step in steps:
            lines.append("")
            lines.extend(step())
        return "\n".join(lines) + "\n"

    def _intro(self) -> list[str]:
        shape = "1 sample (a 1-D input)" if self.one_sample else f"N = {self.n} samples"
        smoothing = f", label_smoothing={self.eps!r}" if self.eps > 0 else ""
        lines = [
            "Why nll_loss(log_softmax(x), y) is the cross-entropy, step by step",
            f"(float64; {shape}, C = {self.c} classes; reduction='{self.reduction}'{smoothing})",
        ]
        if self.is_default:
            lines.append("The classic tutorial example; give --input and --target to explain your own data.")
        return lines

    def _data(self) -> list[str]:
        if self.one_sample:
            intro = _para(
                f"1. The data: the logits x of one sample (C = {self.c} classes) and its target class y",
                "(the tables show the sample as row '-').",
                indent="",
            )
        else:
            intro = _para(
                f"1. The data: logits x (N x C = {self.n} x {self.c}), one row per sample and one column",
                "per class, and the target y, the class index of each row.",
                indent="",
            )
        rows = [[self._row_label(n), *(_num(v) for v in self.x2[n]), str(self.y1[n])] for n in range(self.n)]
        return [*intro, "", *_table([*self._class_header(), "y"], rows)]

    def _log_softmax(self) -> list[str]:
        lines = [
            "2. log_softmax turns each row of logits into log-probabilities:",
            "",
            "     log_softmax(x)[n, c] = x[n, c] - logsumexp(x[n, :]),   logsumexp(v) = log(sum_c exp(v_c))",
            "",
            *_para(
                "so exp(log_softmax(x)[n, :]) sums to 1: row n is a categorical distribution p[n, :]",
                f"over the classes. (Computed by nllkit.logsumexp(x, {self.dim}) and",
                f"nllkit.log_softmax(x, {self.dim}), which subtract the row's maximum first, so that",
                "large logits do not overflow.)",
            ),
            "",
        ]
        rows = [
            [self._row_label(n), _num(self.lse1[n]), "|", *(_num(v) for v in self.logp2[n])]
            for n in range(self.n)
        ]
        header = ["row", "logsumexp", "|"] + [f"log p[n,{c}]" for c in range(self.c)]
        return lines + _table(header, rows)

    def _pick(self) -> list[str]:
        index = "log_softmax(x)[y]" if self.one_sample else "log_softmax(x)[range(N), y]"
        lines = [
            f"3. Pick each row's target entry, {index}:",
            *_para(
                "this indexing is all that nll_loss does. Row n keeps column y[n] (marked [ ]);",
                "the other columns are not used.",
            ),
            "",
        ]
        rows = []
        for n in range(self.n):
            cells = [_num(v) for v in self.logp2[n]]
            if self.ignored[n]:
                tail = "ignored"
            else:
                k = int(self.y1[n])
                cells[k] = f"[{cells[k]}]"
                tail = _num(self.picked[n])
            rows.append([self._row_label(n), *cells, str(self.y1[n]), tail])
        lines += _table([*self._class_header(), "y", "log p[n, y_n]"], rows)
        skipped = [self._row_label(n) for n in range(self.n) if self.ignored[n]]
        if skipped:
            if self.one_sample:
                which = "The sample is"
            elif len(skipped) == 1:
                which = f"Row {skipped[0]} is"
            else:
                which = f"Rows {', '.join(skipped)} are"
            lines += [
                "",
                *_para(
                    f"{which} ignored because y == ignore_index ({self.ignore_index}): no loss, no",
                    "weight and no gradient; the logits of an ignored row are not used at all.",
                ),
            ]
        if 0 <= self.ignore_index < self.c:
            lines += _para(
                f"Note: ignore_index={self.ignore_index} is also a real class. Every row whose target",
                f"is class {self.ignore_index} is skipped, but the class stays in every row's softmax",
                "denominator.",
            )
        return lines

    def _losses(self) -> list[str]:
        lines = ["4. Weights and per-row losses"]
        if self.w is None:
            lines += _para("No --weight: every class weighs 1, so w[y_n] = 1.")
        else:
            weights = ", ".join(_num(v) for v in self.w)
            lines += _para(f"--weight w = [{weights}]: row n counts w[y_n], the weight of its target class.")
        if self.eps > 0:
            lines += _para(
                f"Label smoothing eps = {self.eps!r}: the target distribution is not one-hot; it puts",
                f"1 - eps on y_n plus eps/C = {_num(self.eps / self.c)} on every class (y_n included).",
                "So each row adds a uniform term, weighted per class by w_c (not by w[y_n]):",
            )
            formula = "l_n = (1 - eps) * w[y_n] * (-log p[n, y_n]) + (eps/C) * sum_c w_c * (-log p[n, c])"
        else:
            formula = "l_n = w[y_n] * (-log p[n, y_n])"
        lines += [
            "",
            f"     {formula}",
            "",
            *_para(
                "l_n is 0 for ignored rows; the l_n column is nllkit.cross_entropy(..., reduction='none')."
            ),
            "",
        ]
        header = ["row", "w[y_n]", "-log p[n, y_n]", *(["uniform term"] if self.eps > 0 else []), "l_n"]
        rows = []
        for n in range(self.n):
            if self.ignored[n]:
                cells = ["-"] * (len(header) - 2)
            else:
                cells = [_num(self.w_y[n]), _num(-self.picked[n])]
                if self.eps > 0:
                    cells.append(_num(self.uniform[n]))
            rows.append([self._row_label(n), *cells, _num(self.rows1[n])])
        return lines + _table(header, rows)

    def _reduce(self) -> list[str]:
        if self.reduction == "none":
            what = "a scalar for one sample" if self.one_sample else "l = [l_0, ..., l_{N-1}]"
            return ["5. Reduction 'none': no reduction; the result is the per-row losses, " + what + "."]
        if self.reduction == "sum":
            return [f"5. Reduction 'sum': sum_n l_n = {_num(self.total)}"]
        kept = ~self.ignored
        denominator = float(self.w_y[kept].sum())
        terms = " + ".join(_num(v) for v in self.w_y[kept])
        shown = f"   (= {terms})" if 1 < kept.sum() <= 8 else ""
        lines = [
            "5. Reduction 'mean': a weighted mean, sum_n l_n / sum_n w[y_n] over the rows not ignored.",
            f"   sum_n l_n    = {_num(self.total)}   (nllkit.cross_entropy(..., reduction='sum'))",
            f"   sum_n w[y_n] = {_num(denominator)}{shown}",
        ]
        if not kept.any():
            lines += _para(
                "Every row is ignored: the mean is 0 / 0 = nan, as in PyTorch (the gradient is 0)."
            )
        else:
            lines.append(f"   mean         = {_num(self.total)} / {_num(denominator)} = {_num(self.result)}")
        if self.w is not None:
            lines += _para(
                "With weights the denominator is the total weight of the targets, not the row count."
            )
        elif self.ignored.any():
            lines += _para("The denominator counts only the rows not ignored.")
        else:
            lines += _para("Without weights or ignored rows this is the plain average over the N rows.")
        return lines

    def _result(self) -> list[str]:
        ce = _call("nllkit.cross_entropy", "x, y", self._options(weight="w"))
        nll = _call(
            "nllkit.nll_loss",
            f"nllkit.log_softmax(x, {self.dim}), y",
            self._options(weight="w", smoothing=False),
        )
        lines = ["6. The result"]
        if not self.eps:
            width = max(len(ce), len(nll))
            lines += [
                f"   {nll.ljust(width)} = {_full(self.nll)}",
                f"   {ce.ljust(width)} = {_full(self.result)}",
                *_para(
                    f"They agree ({_agree(self.nll, self.result)}): cross-entropy with class-index targets",
                    "is the negative log-likelihood of the categorical distribution p = softmax(x).",
                ),
            ]
        else:
            smooth = self._reduced_uniform()
            combined = (1 - self.eps) * np.asarray(self.nll, dtype=np.float64) + smooth
            lines += [
                f"   {ce} = {_full(self.result)}",
                f"   {nll} = {_full(self.nll)}",
                *_para(
                    "These differ: label smoothing replaces the one-hot target by (1 - eps) * one-hot",
                    "+ eps/C on every class, so the cross-entropy is (1 - eps) times the NLL plus the",
                    "uniform term of step 4, reduced the same way:",
                ),
                f"   (1 - {self.eps!r}) * {_full(self.nll)} + {_full(smooth)} = {_full(combined)}",
                *_para(f"which agrees with cross_entropy ({_agree(combined, self.result)})."),
            ]
        if self.is_tutorial:
            # The generic path rounds as torch does; the fused kernels may differ by an ulp.
            with nllkit.fused_kernels(False):
                f32 = nllkit.cross_entropy(self.x.astype(np.float32), self.y)
            lines += _para(
                f"In float32 (PyTorch's default dtype) nllkit's generic path gives {_full(f32)}, as",
                "torch 2.13 does (the fused kernels agree within 4 ulp); the tutorials print it rounded, 1.4125.",
            )
        return lines

    def _reduced_uniform(self) -> Any:
        """The uniform term of step 4, reduced like the loss (display only)."""
        if self.reduction == "none":
            return self.uniform[0] if self.one_sample else self.uniform
        total = self.uniform.sum()
        if self.reduction == "sum":
            return total
        return total / self.w_y[~self.ignored].sum()

    def _code(self) -> list[str]:
        return [
            "7. The same in code (printed, not run)",
            "   PyTorch:",
            "",
            *(_CODE_INDENT + line for line in self._torch_code()),
            "",
            "   NumPy:",
            "",
            *(_CODE_INDENT + line for line in self._numpy_code()),
        ]

    def _torch_code(self) -> list[str]:
        x = f"torch.tensor({_literal(self.x.tolist())}, dtype=torch.float64)"
        y = f"torch.tensor({_literal(self.y.tolist())})"
        w = "" if self.w is None else f"torch.tensor({_literal(self.w.tolist())}, dtype=torch.float64)"
        return [
            "import torch",
            "import torch.nn.functional as F",
            _call("F.cross_entropy", f"{x}, {y}", self._options(weight=w)),
        ]

    def _numpy_code(self) -> list[str]:
        n, c, eps = self.n, self.c, self.eps
        lines = ["import numpy as np"]
        if self.one_sample:
            lines.append(f"x = np.array([{_literal(self.x.tolist())}])  # one sample: a batch of one row")
            lines.append(f"y = np.array([{int(self.y)}])")
        else:
            lines.append(f"x = np.array({_literal(self.x.tolist())})")
            lines.append(f"y = np.array({self.y.tolist()})")
        if self.w is not None:
            lines.append(f"w = np.array({_literal(self.w.tolist())})")
        lines += [
            "m = x.max(axis=1, keepdims=True)",
            "logp = x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))  # x - logsumexp(x)",
        ]
        skipping = bool(self.ignored.any())
        if skipping:
            lines += [
                f"keep = y != {self.ignore_index}  # the rows that are not ignored",
                "rows, t = np.flatnonzero(keep), y[keep]",
            ]
            rows, t, all_rows = "rows", "t", "logp[rows]"
        else:
            rows, t, all_rows = f"range({n})", "y", "logp"
        w_t = "" if self.w is None else f"w[{t}] * "
        last = "[0]" if self.one_sample else ""
        if eps > 0:
            row_terms = all_rows if self.w is None else f"(w * {all_rows})"
            per_row = f"-(1 - {eps!r}) * {w_t}logp[{rows}, {t}] - {eps!r} / {c} * {row_terms}.sum(axis=1)"
            if self.reduction == "none" and skipping:
                return [*lines, f"loss = np.zeros({n})", f"loss[rows] = {per_row}", f"loss{last}"]
            lines.append(f"loss = {per_row}  # one loss per row")
            if self.reduction == "none":
                lines.append(f"loss{last}")
            elif self.reduction == "sum":
                lines.append("loss.sum()")
            elif self.w is not None:
                lines.append(f"loss.sum() / w[{t}].sum()")
            else:
                lines.append("loss.sum() / len(rows)" if skipping else "loss.mean()")
            return lines
        picked = f"{w_t}logp[{rows}, {t}]"
        wrapped = picked if self.w is None else f"({picked})"
        if self.reduction == "none":
            if skipping:
                lines += [f"loss = np.zeros({n})", f"loss[rows] = -{picked}", f"loss{last}"]
            else:
                lines.append(f"(-{picked}){last}" if last else f"-{picked}")
        elif self.reduction == "sum":
            lines.append(f"-{wrapped}.sum()")
        elif self.w is not None:
            lines.append(f"-{wrapped}.sum() / w[{t}].sum()")
        else:
            lines.append(f"-{wrapped}.sum() / len(rows)" if skipping else f"-{wrapped}.mean()")
        return lines


# --- command-line wiring ---------------------------------------------------------------

DESCRIPTION = """\
Show, step by step, why nll_loss(log_softmax(x), y) equals cross_entropy(x, y):
the logits and targets, log_softmax with each row's log-sum-exp, the entry each
target picks (the tutorial's log_softmax(x)[range(N), y]), weights and label
smoothing, the reduction, the result computed by nllkit in two ways, and the
equivalent PyTorch and NumPy code. Without arguments it explains the classic
tutorial example (mean loss 1.41247)."""

EPILOG = """\
examples:
  nllkit explain
  nllkit explain --input '[[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]]' --target '[0, 2]'
  nllkit explain --target '[0, -100, 3]' --reduction sum
  nllkit explain --weight '[1, 2, 1, 0.5]' --label-smoothing 0.1
  nllkit explain --input '[1.0, 2.0, 0.5]' --target 1"""


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``nllkit explain`` to `parser`.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    """
    parser.add_argument(
        "--input",
        metavar="JSON",
        help="logits: a list of N rows of C numbers, or one row of C numbers (one sample); "
        "default: the tutorial example",
    )
    parser.add_argument(
        "--target",
        metavar="JSON",
        help="class indices: a list of N integers (or one integer for a one-row --input); "
        "required with --input; default: [0, 2, 3]",
    )
    parser.add_argument("--weight", metavar="JSON", help="per-class weights: a list of C numbers")
    parser.add_argument(
        "--ignore-index",
        metavar="N",
        type=int,
        default=-100,
        help="rows whose target equals N are skipped (default: -100)",
    )
    parser.add_argument(
        "--reduction",
        choices=_REDUCTIONS,
        default="mean",
        help="how the per-row losses are combined (default: mean)",
    )
    parser.add_argument(
        "--label-smoothing",
        metavar="E",
        type=float,
        default=0.0,
        help="mass moved from the target class to the uniform distribution, in [0, 1] (default: 0)",
    )


def run(args: argparse.Namespace) -> int:
    """Print the explanation for the parsed options of ``nllkit explain``.

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
    ValueError, TypeError, IndexError
        Bad data or settings; the caller reports them in one line.
    """
    text = explain(
        None if args.input is None else load_json("--input", args.input),
        None if args.target is None else load_json("--target", args.target),
        None if args.weight is None else load_json("--weight", args.weight),
        ignore_index=args.ignore_index,
        reduction=args.reduction,
        label_smoothing=args.label_smoothing,
    )
    print(text, end="")
    return 0
