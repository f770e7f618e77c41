"""Read one column of numbers from a file for ``nllkit fit``.

The formats are told apart by their content, not their name: a ``.npy``
array (NumPy's magic bytes), a Parquet table (``PAR1``, read with the
optional pyarrow), otherwise delimited text. Text is comma-, tab- or
semicolon-separated: the delimiter is tab for ``.tsv`` and ``.tab`` files and
is sniffed for everything else, standard input (``-``) included.

Header and columns
    A first row with no number in it is a header naming the columns. Columns
    are chosen by name, or by number counting from 1 (the only way when there
    is no header, and for 2-D ``.npy`` arrays). With no ``--column``, a file
    of one column gives it; so does a file whose header names several columns
    of which only one holds a number in the first data row; otherwise the
    column must be chosen and the error lists the columns.

Rows
    Row numbers in messages are those a user sees: text files count lines
    from 1 with the header as line 1; ``.npy`` and Parquet data count rows
    from 1.

Missing and non-finite values
    Nothing is dropped silently. A missing value (an empty field, ``NA``,
    ``NaN``, ``null``, a Parquet null, ...), an infinity, a blank line before
    the last row, or a text field that is not a number is an error naming the
    row and the column. Blank lines at the end of a text file are ignored.
    The one exception is the two columns of bounds of censored data
    (:func:`read_bounds`), where a missing value or an infinity is an open
    end: there a missing cell is information, not a gap.

Weights
    A weights column follows the same rules and must also be non-negative,
    with a positive total.

Every problem is a :class:`ValueError` with a one-line message, which the
``nllkit`` command prints as ``nllkit fit: <message>`` with exit code 2.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

__all__ = ["Bounds", "Column", "read_bounds", "read_column", "read_data"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_NPY_MAGIC = b"\x93NUMPY"
_PARQUET_MAGIC = b"PAR1"
#: Magic bytes of formats a user may plausibly pass but that are not supported.
_OTHER_MAGIC = {b"PK\x03\x04": "a ZIP archive (such as .npz or .xlsx)", b"\x1f\x8b": "gzip-compressed"}
#: Text fields read as missing values (compared lower-cased, after stripping spaces).
_MISSING = frozenset({"", "na", "n/a", "nan", "-nan", "+nan", "null", "none", ".", "?"})
_DELIMITERS = ",\t;"
_PARQUET_EXTRA = "pip install 'nllkit[parquet]' (or pip install pyarrow)"


@dataclass(frozen=True)
class _Located:
    """Values read from a file, with the row of each as a user sees it (see the module notes)."""

    rows: IntArray
    source: str

    def where(self, index: int) -> str:
        """Where value `index` is, for an error message: ``"row 7 of data.csv"``.

        Parameters
        ----------
        index : int
            A position in the values read.

        Returns
        -------
        str

        Examples
        --------
        >>> column = read_data("-", None, None, stdin=io.StringIO("x\\n1.5\\n-2\\n"))
        >>> column.where(1)
        'row 3 of standard input'
        """
        return f"row {int(self.rows[index])} of {self.source}"


@dataclass(frozen=True)
class Column(_Located):
    """A column of numbers read by :func:`read_data`, with where each came from.

    Attributes
    ----------
    values : ndarray, shape (n,)
        float64 finite values, in file order.
    weights : ndarray, shape (n,), or None
        float64 finite non-negative weights, or None without a weights column.
    description : str
        What was read, for a report: ``"data.csv, column 'x' (3 values)"``.
    rows : ndarray, shape (n,)
        int64 row number of each value as a user sees it (see the module notes).
    source : str
        The file name, or ``'standard input'``.
    name : str
        The column, as a user would name it: ``"'x'"`` or ``'2'``.
    """

    values: FloatArray
    weights: FloatArray | None
    description: str
    name: str


@dataclass(frozen=True)
class Bounds(_Located):
    r"""Two columns of bounds read by :func:`read_bounds`: censored observations, row by row.

    Row :math:`i` says :math:`\text{lower}_i \le X_i \le \text{upper}_i`; a
    NaN or ``-inf`` lower bound is none (left-censored), a NaN or ``inf``
    upper bound is none (right-censored), equal bounds an exact value. Every
    row has at least one finite bound and ``lower <= upper``.

    Attributes
    ----------
    lower, upper : ndarray, shape (n,)
        float64 bounds, NaN where the cell was missing.
    weights : ndarray, shape (n,), or None
        As for :class:`Column`.
    description : str
        What was read: ``"data.csv, bounds in columns 'lo' and 'hi' (12 rows)"``.
    rows, source
        As for :class:`Column`.
    names : tuple of str
        The two columns, as a user would name them.
    """

    lower: FloatArray
    upper: FloatArray
    weights: FloatArray | None
    description: str
    names: tuple[str, str]


def read_column(
    path: str, column: str | None, weights: str | None, *, stdin: TextIO | None = None
) -> tuple[FloatArray, FloatArray | None, str]:
    """Read a column of numbers, and optionally a weights column, from a file.

    Parameters
    ----------
    path : str
        A CSV, TSV, Parquet or ``.npy`` file, or ``'-'`` for CSV or TSV text
        on standard input.
    column : str or None
        The column's name in the header, or its number counting from 1. None
        chooses the only column, or the only numeric one (see the module notes).
    weights : str or None
        The weights column, named the same way, or None for no weights.
    stdin : text stream, optional
        Read instead of :data:`sys.stdin` when `path` is ``'-'``.

    Returns
    -------
    values : ndarray
        float64, finite, one per data row.
    weights : ndarray or None
        float64, finite and non-negative, one per data row; None if `weights` is None.
    description : str
        What was read, such as ``"data.csv, column 'x' (195 values)"``.

    Raises
    ------
    ValueError
        One line saying what is wrong and where: a missing file, an unknown
        format, a missing or ambiguous column (listing the columns), a value
        that is not a number or is missing or infinite (with its row and
        column), no data, or a negative weight.

    See Also
    --------
    read_data : the same, with the row of each value.

    Examples
    --------
    >>> text = io.StringIO("dose,count\\n1.5,3\\n2.5,0\\n")
    >>> values, w, what = read_column("-", "dose", "count", stdin=text)
    >>> values, w
    (array([1.5, 2.5]), array([3., 0.]))
    >>> what
    "standard input, column 'dose' (2 values), weights column 'count'"
    >>> read_column("-", "dose", None, stdin=io.StringIO("dose\\n1.5\\nabc\\n"))
    Traceback (most recent call last):
    ...
    ValueError: non-numeric value 'abc' in row 3, column 'dose' of standard input
    """
    data = read_data(path, column, weights, stdin=stdin)
    return data.values, data.weights, data.description


def read_data(
    path: str, column: str | None, weights: str | None, *, stdin: TextIO | None = None, option: str = "--column"
) -> Column:
    """Read a column of numbers like :func:`read_column`, keeping each value's row.

    Parameters
    ----------
    path, column, weights, stdin
        As for :func:`read_column`.
    option : str
        The command-line option that named `column`, for its errors.

    Returns
    -------
    Column
        The values, weights and description, with the row of each value so
        that later checks (such as the support of a distribution) can name it.

    Raises
    ------
    ValueError
        As for :func:`read_column`.

    Examples
    --------
    >>> data = read_data("-", "2", None, stdin=io.StringIO("1;10\\n2;20\\n"))
    >>> data.values, data.rows, data.name
    (array([10., 20.]), array([1, 2]), '2')
    """
    table = _open(path, stdin)
    value_index = _choose(table, column, option) if column is not None else _default_column(table)
    values, rows = table.read(value_index, False)
    name = table.label(value_index)
    if values.size == 0:
        raise ValueError(f"no data in {table.source}: column {name} has no values")
    description = f"{table.source}, column {name} ({values.size} value{'s' * (values.size != 1)})"
    w = None
    if weights is not None:
        w, weight_name = _read_weights(table, weights, rows)
        description += f", weights column {weight_name}"
    return Column(rows=rows, source=table.source, values=values, weights=w, description=description, name=name)


def read_bounds(path: str, lower: str, upper: str, weights: str | None, *, stdin: TextIO | None = None) -> Bounds:
    """Read two columns of bounds of censored observations, and optionally a weights column.

    The convention of fitdistrplus's ``fitdistcens`` (and of R's
    ``Surv(type='interval2')``): per row, a missing cell (empty, ``NA``,
    ``NaN``, a Parquet null, ...) or an infinity of the right sign is an open
    end. Only here are missing values and infinities read; the weights column
    keeps the rules of :func:`read_data`.

    ==============  ==============  =====================================
    lower           upper           the observation
    ==============  ==============  =====================================
    ``x``           ``x``           exact, :math:`X = x`
    missing/-inf    ``x``           left-censored, :math:`X \\le x`
    ``x``           missing/inf     right-censored, :math:`X \\ge x`
    ``l``           ``u > l``       interval-censored, :math:`l < X \\le u`
    ==============  ==============  =====================================

    Parameters
    ----------
    path : str
        As for :func:`read_column`; standard input (``'-'``) included, as the
        table is read once.
    lower, upper : str
        The columns of lower and upper bounds, by header name or number from 1.
    weights : str or None
        A weights column, or None.
    stdin : text stream, optional
        As for :func:`read_column`.

    Returns
    -------
    Bounds

    Raises
    ------
    ValueError
        As for :func:`read_column`, and for a row with no finite bound, a
        lower bound of ``inf`` or an upper one of ``-inf``, or a lower bound
        above its upper one, naming the row.

    Examples
    --------
    >>> text = io.StringIO("lo,hi\\n1.5,1.5\\n,0.5\\n2.0,NA\\n1.0,3.0\\n")
    >>> bounds = read_bounds("-", "lo", "hi", None, stdin=text)
    >>> bounds.lower, bounds.upper
    (array([1.5, nan, 2. , 1. ]), array([1.5, 0.5, nan, 3. ]))
    >>> bounds.description
    "standard input, bounds in columns 'lo' and 'hi' (4 rows)"
    >>> read_bounds("-", "lo", "hi", None, stdin=io.StringIO("lo,hi\\n1,2\\n3,2\\n"))
    Traceback (most recent call last):
    ...
    ValueError: lower bound 3 is above upper bound 2 in row 3 of standard input (columns 'lo' and 'hi'); 1 row(s) are so
    """
    table = _open(path, stdin)
    indices = _choose(table, lower, "--censored"), _choose(table, upper, "--censored")
    if indices[0] == indices[1]:
        raise ValueError(
            f"--censored needs two different columns, LOWER and UPPER; got {table.label(indices[0])} twice"
        )
    (lo, rows), (hi, _) = (table.read(index, True) for index in indices)
    names = (table.label(indices[0]), table.label(indices[1]))
    if lo.size == 0:
        raise ValueError(f"no data in {table.source}: columns {names[0]} and {names[1]} have no rows")
    where = f"{table.source} (columns {names[0]} and {names[1]})"

    def refuse(bad: npt.NDArray[np.bool_], what: Callable[[int], str], rule: str) -> None:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{what(i)} in row {rows[i]} of {where}{rule}; {int(bad.sum())} row(s) are so")

    refuse(
        ~(np.isfinite(lo) | np.isfinite(hi)),
        lambda i: f"no finite bound (lower {_cell(lo[i])}, upper {_cell(hi[i])})",
        ": each row must bound the value on at least one side",
    )
    refuse(lo == np.inf, lambda i: "lower bound inf", ": a lower bound is finite, or missing or -inf for none")
    refuse(hi == -np.inf, lambda i: "upper bound -inf", ": an upper bound is finite, or missing or inf for none")
    refuse(lo > hi, lambda i: f"lower bound {_number(lo[i])} is above upper bound {_number(hi[i])}", "")
    description = f"{table.source}, bounds in columns {names[0]} and {names[1]} ({lo.size} row{'s' * (lo.size != 1)})"
    w = None
    if weights is not None:
        w, weight_name = _read_weights(table, weights, rows)
        description += f", weights column {weight_name}"
    return Bounds(rows=rows, source=table.source, lower=lo, upper=hi, weights=w, description=description, names=names)


def _read_weights(table: _Table, weights: str, rows: IntArray) -> tuple[FloatArray, str]:
    """The weights column named `weights`: finite, non-negative, with a positive total."""
    weight_index = _choose(table, weights, "--weights")
    w, _ = table.read(weight_index, False)
    weight_name = table.label(weight_index)
    negative = np.flatnonzero(w < 0)
    if negative.size:
        i = int(negative[0])
        raise ValueError(
            f"negative weight {_number(w[i])} in row {rows[i]}, column {weight_name} of {table.source}: "
            f"weights must be non-negative ({negative.size} negative)"
        )
    if not w.sum() > 0:
        raise ValueError(f"the weights in column {weight_name} of {table.source} are all zero")
    return w, weight_name


# --- tables ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    """The columns of a file, read on demand.

    ``read(i, open_ends)`` returns column ``i``'s float64 values and their
    row numbers, raising a ValueError for a non-numeric value, and for a
    missing or infinite one unless ``open_ends`` (bounds of censored data,
    where a missing value is NaN and an infinity is kept).
    ``numeric`` says, per column, whether its first data value is a number:
    what picks the column when none is named.
    """

    source: str
    names: Sequence[str] | None
    ncols: int
    numeric: Sequence[bool]
    read: Callable[[int, bool], tuple[FloatArray, IntArray]]

    def label(self, index: int) -> str:
        return repr(self.names[index]) if self.names is not None else str(index + 1)

    def listing(self) -> str:
        if self.names is None:
            return f"columns 1 to {self.ncols} (no header)" if self.ncols > 1 else "column 1 (no header)"
        return ", ".join(repr(name) for name in self.names)


def _open(path: str, stdin: TextIO | None) -> _Table:
    """The table in `path` (or standard input), its format found from its content."""
    if path == "-":
        stream = sys.stdin if stdin is None else stdin
        try:
            text = stream.read()
        except UnicodeDecodeError:
            raise ValueError("cannot read standard input: it is not UTF-8 text (CSV or TSV)") from None
        return _text_table(text.removeprefix("\ufeff"), "standard input", None)
    source = os.path.basename(path) or path
    if not os.path.exists(path):
        raise ValueError(f"no such file: {path}")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory, not a data file")
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head.startswith(_NPY_MAGIC):
        return _npy_table(path, source)
    if head.startswith(_PARQUET_MAGIC):
        return _parquet_table(path, source)
    for magic, kind in _OTHER_MAGIC.items():
        if head.startswith(magic):
            raise ValueError(f"cannot read {source}: it is {kind}; expected CSV, TSV, Parquet or .npy")
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    except UnicodeDecodeError:
        raise ValueError(
            f"cannot read {source}: it is neither UTF-8 text (CSV, TSV) nor a Parquet or .npy file"
        ) from None
    delimiter = "\t" if os.path.splitext(path)[1].lower() in (".tsv", ".tab") else None
    return _text_table(text, source, delimiter)


def _choose(table: _Table, wanted: str, option: str) -> int:
    """The index of the column named `wanted` (a header name, else a number from 1)."""
    if table.names is not None:
        matches = [i for i, name in enumerate(table.names) if name == wanted]
        if len(matches) > 1:
            raise ValueError(
                f"{option} {wanted!r}: {table.source} has {len(matches)} columns named so; "
                f"give its number instead ({', '.join(str(i + 1) for i in matches)})"
            )
        if matches:
            return matches[0]
    if wanted.strip().isdigit() and 1 <= int(wanted) <= table.ncols:
        return int(wanted) - 1
    raise ValueError(f"{option} {wanted!r}: no such column in {table.source}; its columns are {table.listing()}")


def _default_column(table: _Table) -> int:
    """The column to read when none is named: the only one, or the only numeric one."""
    if table.ncols == 1:
        return 0
    numeric = [i for i, is_number in enumerate(table.numeric) if is_number]
    if table.names is not None and len(numeric) == 1:
        return numeric[0]
    raise ValueError(f"{table.source} has {table.ncols} columns, choose one with --column: {table.listing()}")


# --- values ------------------------------------------------------------------------


def _number(value: float) -> str:
    return f"{value:g}"


def _cell(value: float) -> str:
    """A bound as read, for a message: a number, or ``missing`` for NaN."""
    return "missing" if math.isnan(value) else _number(value)


def _missing_error(value: str, row: int, column: str, source: str) -> ValueError:
    return ValueError(
        f"missing value {value!r} in row {row}, column {column} of {source}: rows with missing values are "
        "not dropped; remove or fill them"
    )


def _parse(text: str) -> float | None:
    """A text field as a float, or None if it is not a number.

    Python's ``float`` also takes ``1_000``: digit grouping that a data file
    is more likely to hold by mistake, so it is refused.
    """
    if "_" in text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _check_finite(values: FloatArray, rows: IntArray, column: str, source: str) -> None:
    """Refuse NaN (a missing value) and infinities in an array read from a binary file."""
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        if np.isnan(values[i]):
            raise _missing_error("NaN", int(rows[i]), column, source)
        raise ValueError(
            f"infinite value {_number(values[i])} in row {rows[i]}, column {column} of {source}: "
            "the data must be finite"
        )


# --- delimited text ------------------------------------------------------------------


def _sniff(text: str) -> str:
    """The delimiter of CSV-like text: comma, tab or semicolon (comma for one column)."""
    sample = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        # A single column has no delimiter to find; the commonest one serves.
        return ","


def _text_table(text: str, source: str, delimiter: str | None) -> _Table:
    """The table of CSV or TSV text; rows are numbered by line, the header being line 1."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter or _sniff(text), skipinitialspace=True)
    lines: list[tuple[int, list[str]]] = []
    try:
        for fields in reader:
            lines.append((reader.line_num, fields))
    except csv.Error as exc:
        raise ValueError(f"cannot read {source} as CSV or TSV: line {reader.line_num}: {exc}") from None
    # Blank lines at the end are an editor's habit; any other one may be a missing value.
    while lines and not any(field.strip() for field in lines[-1][1]):
        lines.pop()
    if not lines:
        raise ValueError(f"no data in {source}: it is empty")
    first = [field.strip() for field in lines[0][1]]
    has_header = all(_parse(field) is None for field in first) and any(field.lower() not in _MISSING for field in first)
    names = first if has_header else None
    body = lines[1:] if has_header else lines
    # With a header, fields beyond it have no name and are ignored.
    ncols = len(first) if has_header else max(len(fields) for _, fields in lines)
    if has_header and not body:
        raise ValueError(f"no data in {source}: it has a header row ({', '.join(map(repr, first))}) and no values")
    numeric = [len(body[0][1]) > i and _parse(body[0][1][i].strip()) is not None for i in range(ncols)]
    table: _Table

    def read(index: int, open_ends: bool) -> tuple[FloatArray, IntArray]:
        label = table.label(index)
        values = np.empty(len(body), dtype=np.float64)
        rows = np.empty(len(body), dtype=np.int64)
        for k, (row, fields) in enumerate(body):
            if not any(field.strip() for field in fields):
                raise ValueError(f"row {row} of {source} is blank: a missing value? Remove the line or fill it in")
            if index >= len(fields):
                raise ValueError(
                    f"row {row} of {source} has {len(fields)} field{'s' * (len(fields) != 1)}, so no column {label}"
                )
            field = fields[index].strip()
            value = _parse(field)
            rows[k] = row
            if field.lower() in _MISSING:
                if not open_ends:
                    raise _missing_error(field, row, label, source)
                value = math.nan
            if value is None:
                raise ValueError(f"non-numeric value {field!r} in row {row}, column {label} of {source}")
            if not (open_ends or math.isfinite(value)):
                raise ValueError(
                    f"infinite value {field!r} in row {row}, column {label} of {source}: the data must be finite"
                )
            values[k] = value
        return values, rows

    table = _Table(source=source, names=names, ncols=ncols, numeric=numeric, read=read)
    return table


# --- binary formats ------------------------------------------------------------------


def _npy_table(path: str, source: str) -> _Table:
    """The table of a ``.npy`` array: 1-D (one column), 2-D (numbered columns) or structured (named)."""
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        # Loading pickled object arrays would run arbitrary code from the file.
        raise ValueError(f"cannot read {source}: {exc}") from None
    except (OSError, EOFError) as exc:
        raise ValueError(f"cannot read {source}: not a valid .npy file ({exc})") from None
    if array.dtype.names is not None:
        if array.ndim != 1:
            raise ValueError(f"cannot read {source}: a structured array must be 1-D; got shape {array.shape}")
        names: list[str] | None = list(array.dtype.names)
        columns = [array[name] for name in array.dtype.names]
    elif array.ndim == 1:
        names, columns = None, [array]
    elif array.ndim == 2:
        names, columns = None, [array[:, j] for j in range(array.shape[1])]
    else:
        raise ValueError(f"cannot read {source}: expected a 1-D or 2-D array; got shape {array.shape}")
    if not columns or columns[0].size == 0:
        raise ValueError(f"no data in {source}: the array is empty (shape {array.shape})")
    table: _Table

    def read(index: int, open_ends: bool) -> tuple[FloatArray, IntArray]:
        column = columns[index]
        label = table.label(index)
        kind = column.dtype.kind
        if kind not in "iuf":
            raise ValueError(f"column {label} of {source} holds {column.dtype} values, not real numbers")
        values = np.asarray(column, dtype=np.float64)
        rows = np.arange(1, values.size + 1, dtype=np.int64)
        if not open_ends:
            _check_finite(values, rows, label, source)
        return values, rows

    numeric = [c.dtype.kind in "iuf" for c in columns]
    table = _Table(source=source, names=names, ncols=len(columns), numeric=numeric, read=read)
    return table


def _parquet_table(path: str, source: str) -> _Table:
    """The table of a Parquet file, read with pyarrow (the optional ``parquet`` extra)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError(f"reading Parquet ({source}) needs pyarrow: {_PARQUET_EXTRA}") from None
    try:
        data = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"cannot read {source} as Parquet: {exc}") from None
    names = list(data.column_names)
    if not names or data.num_rows == 0:
        raise ValueError(f"no data in {source}: the table has no rows")

    def is_number(type_: Any) -> bool:
        return bool(pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_decimal(type_))

    table: _Table

    def read(index: int, open_ends: bool) -> tuple[FloatArray, IntArray]:
        column = data.column(index)
        label = table.label(index)
        if not is_number(column.type):
            raise ValueError(f"column {label} of {source} holds {column.type} values, not numbers")
        rows = np.arange(1, len(column) + 1, dtype=np.int64)
        nulls = np.flatnonzero(np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool))
        if nulls.size and not open_ends:
            raise _missing_error("null", int(rows[nulls[0]]), label, source)
        values = np.array(column.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        if open_ends:
            values[nulls] = np.nan
        else:
            _check_finite(values, rows, label, source)
        return values, rows

    numeric = [is_number(data.schema.field(i).type) for i in range(len(names))]
    table = _Table(source=source, names=names, ncols=len(names), numeric=numeric, read=read)
    return table
