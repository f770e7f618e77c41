"""Reading a column of numbers for ``nllkit fit``: every format and every error.

Each error is a ValueError of one line that says what is wrong and where: the
row as a user sees it in the file (the header is line 1) and the column.
"""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest

from nllkit.cli._data import read_bounds, read_column, read_data

HAS_PYARROW = importlib.util.find_spec("pyarrow") is not None


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def read_text(text: str, column: str | None = None, weights: str | None = None):  # type: ignore[no-untyped-def]
    return read_column("-", column, weights, stdin=io.StringIO(text))


def error(path: str, column: str | None = None, weights: str | None = None, *, stdin: str | None = None) -> str:
    with pytest.raises(ValueError) as info:
        read_column(path, column, weights, stdin=None if stdin is None else io.StringIO(stdin))
    message = str(info.value)
    assert "\n" not in message
    return message


# --- formats -------------------------------------------------------------------------


def test_csv_with_header(tmp_path: Path) -> None:
    path = write(tmp_path, "data.csv", "x,w\n1.5,2\n-3,0.5\n1e3,1\n")
    values, weights, description = read_column(path, "x", "w")
    np.testing.assert_array_equal(values, [1.5, -3.0, 1000.0])
    np.testing.assert_array_equal(weights, [2.0, 0.5, 1.0])
    assert values.dtype == np.float64 and weights is not None and weights.dtype == np.float64
    assert description == "data.csv, column 'x' (3 values), weights column 'w'"


def test_csv_without_header_numbers_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "data.csv", "1,10\n2,20\n")
    values, weights, description = read_column(path, "2", "1")
    np.testing.assert_array_equal(values, [10.0, 20.0])
    np.testing.assert_array_equal(weights, [1.0, 2.0])
    assert description == "data.csv, column 2 (2 values), weights column 1"


def test_columns_by_number_with_a_header(tmp_path: Path) -> None:
    path = write(tmp_path, "data.csv", "a,b\n1,10\n2,20\n")
    np.testing.assert_array_equal(read_column(path, "2", None)[0], [10.0, 20.0])


def test_a_first_row_with_a_number_is_data(tmp_path: Path) -> None:
    path = write(tmp_path, "data.csv", "2,1\nx,5\ny,6\n")
    assert error(path, "1") == "non-numeric value 'x' in row 2, column 1 of data.csv"
    np.testing.assert_array_equal(read_column(path, "2", None)[0], [1.0, 5.0, 6.0])


@pytest.mark.parametrize("name", ["data.tsv", "data.tab", "data.txt", "data"])
def test_tsv_by_extension_or_sniffed(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name, "id\tvalue\n1\t0.25\n2\t0.75\n")
    values, _, description = read_column(path, "value", None)
    np.testing.assert_array_equal(values, [0.25, 0.75])
    assert description.startswith(f"{name}, column 'value'")


def test_semicolon_sniffed(tmp_path: Path) -> None:
    path = write(tmp_path, "data.csv", "a;b\n1;2\n3;4\n")
    np.testing.assert_array_equal(read_column(path, "b", None)[0], [2.0, 4.0])


def test_single_column_needs_no_option(tmp_path: Path) -> None:
    path = write(tmp_path, "one.csv", "y\n3\n4\n\n\n")  # trailing blank lines are ignored
    values, weights, description = read_column(path, None, None)
    np.testing.assert_array_equal(values, [3.0, 4.0])
    assert weights is None and description == "one.csv, column 'y' (2 values)"
    path = write(tmp_path, "bare.txt", "3\n4\n")
    assert read_column(path, None, None)[2] == "bare.txt, column 1 (2 values)"


def test_the_only_numeric_column_is_chosen(tmp_path: Path) -> None:
    path = write(tmp_path, "data.csv", "name,value\nalpha,1.5\nbeta,2.5\n")
    values, _, description = read_column(path, None, None)
    np.testing.assert_array_equal(values, [1.5, 2.5])
    assert description == "data.csv, column 'value' (2 values)"


def test_utf8_bom_spaces_and_quotes(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes('\ufeff"x", "y"\n" 1.5", 2\n'.encode())
    values, _, _ = read_column(str(path), "x", None)
    np.testing.assert_array_equal(values, [1.5])


@pytest.mark.parametrize("text", ["x,w\n1,2\n3,4\n", "x\tw\n1\t2\n3\t4\n"])
def test_stdin(text: str) -> None:
    values, weights, description = read_text(text, "x", "w")
    np.testing.assert_array_equal(values, [1.0, 3.0])
    np.testing.assert_array_equal(weights, [2.0, 4.0])
    assert description.startswith("standard input, column 'x'")


def test_stdin_defaults_to_sys_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("5\n6\n"))
    np.testing.assert_array_equal(read_column("-", None, None)[0], [5.0, 6.0])


def test_rows_are_file_lines() -> None:
    data = read_data("-", "x", None, stdin=io.StringIO('x,note\n1,"two\nlines"\n2,b\n'))
    np.testing.assert_array_equal(data.rows, [3, 4])  # a quoted field spans lines 2 and 3
    assert data.where(1) == "row 4 of standard input" and data.name == "'x'"


def test_npy_1d_and_2d(tmp_path: Path) -> None:
    path = tmp_path / "one.npy"
    np.save(path, np.array([1, 2, 3], dtype=np.int32))
    values, _, description = read_column(str(path), None, None)
    np.testing.assert_array_equal(values, [1.0, 2.0, 3.0])
    assert values.dtype == np.float64 and description == "one.npy, column 1 (3 values)"
    path = tmp_path / "two.npy"
    np.save(path, np.array([[1.0, 10.0], [2.0, 20.0]]))
    values, weights, _ = read_column(str(path), "1", "2")
    np.testing.assert_array_equal(values, [1.0, 2.0])
    np.testing.assert_array_equal(weights, [10.0, 20.0])
    assert "2 columns, choose one with --column: columns 1 to 2 (no header)" in error(str(path))


def test_npy_structured_columns_by_name(tmp_path: Path) -> None:
    path = tmp_path / "rec.npy"
    array = np.array([(0.5, 3), (1.5, 4)], dtype=[("t", "f8"), ("n", "i4")])
    np.save(path, array)
    values, weights, _ = read_column(str(path), "t", "n")
    np.testing.assert_array_equal(values, [0.5, 1.5])
    np.testing.assert_array_equal(weights, [3.0, 4.0])


def test_format_is_found_from_content(tmp_path: Path) -> None:
    path = tmp_path / "misnamed.csv"
    with open(path, "wb") as handle:
        np.save(handle, np.array([7.0]))
    np.testing.assert_array_equal(read_column(str(path), None, None)[0], [7.0])


@pytest.mark.skipif(not HAS_PYARROW, reason="needs pyarrow")
def test_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"name": ["a", "b"], "x": [1.5, 2.5], "n": pa.array([3, 4], pa.int64())}), path)
    values, weights, description = read_column(str(path), "x", "n")
    np.testing.assert_array_equal(values, [1.5, 2.5])
    np.testing.assert_array_equal(weights, [3.0, 4.0])
    assert description == "data.parquet, column 'x' (2 values), weights column 'n'"
    assert "data.parquet has 3 columns, choose one with --column: 'name', 'x', 'n'" in error(str(path))
    assert "column 'name' of data.parquet holds string values, not numbers" in error(str(path), "name")
    pq.write_table(pa.table({"x": pa.array([1.0, None, 3.0])}), path)
    assert "missing value 'null' in row 2, column 'x' of data.parquet" in error(str(path))
    pq.write_table(pa.table({"x": pa.array([1.0, float("inf")])}), path)
    assert "infinite value inf in row 2, column 'x'" in error(str(path))
    pq.write_table(pa.table({"x": pa.array([], pa.float64())}), path)
    assert "no data in data.parquet" in error(str(path))


def test_parquet_without_pyarrow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "data.parquet"
    path.write_bytes(b"PAR1" + b"\0" * 16 + b"PAR1")
    # A None entry in sys.modules makes the import fail, as when pyarrow is absent.
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)
    monkeypatch.setitem(__import__("sys").modules, "pyarrow.parquet", None)
    assert (
        error(str(path))
        == "reading Parquet (data.parquet) needs pyarrow: pip install 'nllkit[parquet]' (or pip install pyarrow)"
    )


# --- errors --------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.csv")
    assert error(path) == f"no such file: {path}"
    assert error(str(tmp_path)) == f"{tmp_path} is a directory, not a data file"


def test_unknown_binary_formats(tmp_path: Path) -> None:
    path = tmp_path / "data.npz"
    np.savez(path, x=np.arange(3))
    assert "data.npz: it is a ZIP archive (such as .npz or .xlsx)" in error(str(path))
    path = tmp_path / "blob.bin"
    path.write_bytes(b"\xff\xfe\x00\x81garbage")
    assert "cannot read blob.bin: it is neither UTF-8 text (CSV, TSV) nor a Parquet or .npy file" in error(str(path))


def test_npy_errors(tmp_path: Path) -> None:
    path = tmp_path / "obj.npy"
    np.save(path, np.array([1, "a"], dtype=object), allow_pickle=True)
    assert error(str(path)).startswith("cannot read obj.npy: ")
    path = tmp_path / "cube.npy"
    np.save(path, np.zeros((2, 2, 2)))
    assert "expected a 1-D or 2-D array; got shape (2, 2, 2)" in error(str(path))
    path = tmp_path / "empty.npy"
    np.save(path, np.zeros(0))
    assert "no data in empty.npy" in error(str(path))
    path = tmp_path / "nan.npy"
    np.save(path, np.array([1.0, 2.0, np.nan]))
    assert error(str(path)).startswith("missing value 'NaN' in row 3, column 1 of nan.npy")
    path = tmp_path / "text.npy"
    np.save(path, np.array(["a", "b"]))
    assert "column 1 of text.npy holds <U1 values, not real numbers" in error(str(path))
    path = tmp_path / "broken.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00garbage")
    assert error(str(path)).startswith("cannot read broken.npy: ")
    path = tmp_path / "one.npy"
    np.save(path, np.array([1.0]))
    assert "--column 'x': no such column in one.npy; its columns are column 1 (no header)" in error(str(path), "x")


def test_missing_column_lists_the_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "data.csv", "a,b,c\n1,2,3\n")
    assert error(path, "d") == "--column 'd': no such column in data.csv; its columns are 'a', 'b', 'c'"
    assert error(path, "4") == "--column '4': no such column in data.csv; its columns are 'a', 'b', 'c'"
    assert error(path, "a", "z") == "--weights 'z': no such column in data.csv; its columns are 'a', 'b', 'c'"
    path = write(tmp_path, "bare.csv", "1,2,3\n")
    assert error(path, "x") == "--column 'x': no such column in bare.csv; its columns are columns 1 to 3 (no header)"


def test_several_numeric_columns_need_a_choice(tmp_path: Path) -> None:
    path = write(tmp_path, "data.csv", "a,b\n1,2\n")
    assert error(path) == "data.csv has 2 columns, choose one with --column: 'a', 'b'"
    path = write(tmp_path, "bare.csv", "1,2\n")
    assert error(path) == "bare.csv has 2 columns, choose one with --column: columns 1 to 2 (no header)"


def test_duplicate_column_names(tmp_path: Path) -> None:
    path = write(tmp_path, "data.csv", "x,x\n1,2\n")
    assert error(path, "x") == "--column 'x': data.csv has 2 columns named so; give its number instead (1, 2)"


def test_non_numeric_value_names_row_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "data.csv", "x,y\n1,2\n3,oops\n")
    assert error(path, "y") == "non-numeric value 'oops' in row 3, column 'y' of data.csv"
    path = write(tmp_path, "bare.csv", "1\n2\n1_000\n")
    assert error(path) == "non-numeric value '1_000' in row 3, column 1 of bare.csv"


@pytest.mark.parametrize("token", ["", "NA", "nan", "NULL", "N/A", "."])
def test_missing_values_are_errors_not_dropped(tmp_path: Path, token: str) -> None:
    path = write(tmp_path, "data.csv", f"x,y\n1,2\n{token},3\n")
    message = error(path, "x")
    assert message.startswith(f"missing value {token!r} in row 3, column 'x' of data.csv")
    assert "not dropped" in message


def test_a_blank_line_inside_the_data_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "data.csv", "y\n1\n\n2\n")
    assert error(path) == "row 3 of data.csv is blank: a missing value? Remove the line or fill it in"


@pytest.mark.parametrize("token", ["inf", "-Infinity", "1e999"])
def test_infinite_values(token: str) -> None:
    assert error("-", stdin=f"x\n1\n{token}\n") == (
        f"infinite value {token!r} in row 3, column 'x' of standard input: the data must be finite"
    )


def test_short_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "data.csv", "x,y\n1,2\n3\n")
    assert error(path, "y") == "row 3 of data.csv has 1 field, so no column 'y'"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no data in data.csv: it is empty"),
        ("\n\n", "no data in data.csv: it is empty"),
        ("x,y\n", "no data in data.csv: it has a header row ('x', 'y') and no values"),
    ],
)
def test_empty_data(tmp_path: Path, text: str, message: str) -> None:
    assert error(write(tmp_path, "data.csv", text)) == message


def test_empty_stdin() -> None:
    assert error("-", stdin="") == "no data in standard input: it is empty"


def test_weights_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "data.csv", "x,w\n1,2\n2,-1\n3,-4\n")
    assert error(path, "x", "w") == (
        "negative weight -1 in row 3, column 'w' of data.csv: weights must be non-negative (2 negative)"
    )
    path = write(tmp_path, "data.csv", "x,w\n1,2\n2,heavy\n")
    assert error(path, "x", "w") == "non-numeric value 'heavy' in row 3, column 'w' of data.csv"
    path = write(tmp_path, "data.csv", "x,w\n1,NA\n")
    assert error(path, "x", "w").startswith("missing value 'NA' in row 2, column 'w' of data.csv")
    path = write(tmp_path, "data.csv", "x,w\n1,0\n2,0\n")
    assert error(path, "x", "w") == "the weights in column 'w' of data.csv are all zero"


def test_malformed_csv_quote() -> None:
    # csv in strict mode is not used: an unterminated quote reads to the end, as spreadsheets do.
    values, _, _ = read_text('x\n1\n"2\n')
    np.testing.assert_array_equal(values, [1.0, 2.0])


# --- bounds of censored data: the one reader that takes missing cells -------------------------------------


def bounds_error(text: str, lower: str = "lo", upper: str = "hi", weights: str | None = None) -> str:
    with pytest.raises(ValueError) as info:
        read_bounds("-", lower, upper, weights, stdin=io.StringIO(text))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_bounds_take_missing_cells_and_infinities_as_open_ends() -> None:
    text = "id,lo,hi,w\na,1.5,1.5,1\nb,,0.5,2\nc,2.0,NA,1\nd,-inf,3,1\ne,4,inf,1\nf,NaN,2,1\ng,1.0,3.0,1\nh,2,null,1\n"
    bounds = read_bounds("-", "lo", "hi", "w", stdin=io.StringIO(text))
    nan, inf = np.nan, np.inf
    np.testing.assert_array_equal(bounds.lower, [1.5, nan, 2.0, -inf, 4.0, nan, 1.0, 2.0])
    np.testing.assert_array_equal(bounds.upper, [1.5, 0.5, nan, 3.0, inf, 2.0, 3.0, nan])
    np.testing.assert_array_equal(bounds.weights, [1, 2, 1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(bounds.rows, np.arange(2, 10))
    assert bounds.names == ("'lo'", "'hi'") and bounds.where(2) == "row 4 of standard input"
    assert bounds.description == "standard input, bounds in columns 'lo' and 'hi' (8 rows), weights column 'w'"
    # Every other read keeps refusing the same cells.
    with pytest.raises(ValueError, match=r"^missing value '' in row 3, column 'lo' of standard input"):
        read_data("-", "lo", None, stdin=io.StringIO(text))
    with pytest.raises(ValueError, match=r"^infinite value 'inf' in row 6, column 'hi'"):
        read_data("-", "hi", None, stdin=io.StringIO("hi\n1\n2\n3\n4\ninf\n"))


def test_bounds_columns_by_number_without_header() -> None:
    bounds = read_bounds("-", "1", "2", None, stdin=io.StringIO("1;2\n;3\n4;\n"))
    np.testing.assert_array_equal(bounds.lower, [1.0, np.nan, 4.0])
    np.testing.assert_array_equal(bounds.upper, [2.0, 3.0, np.nan])
    np.testing.assert_array_equal(bounds.rows, [1, 2, 3])


def test_bounds_from_npy_and_parquet(tmp_path: Path) -> None:
    path = tmp_path / "bounds.npy"
    np.save(path, np.array([[1.0, 1.0], [np.nan, 2.0], [3.0, np.inf], [0.5, 1.5]]))
    bounds = read_bounds(str(path), "1", "2", None)
    np.testing.assert_array_equal(bounds.lower, [1.0, np.nan, 3.0, 0.5])
    np.testing.assert_array_equal(bounds.upper, [1.0, 2.0, np.inf, 1.5])
    np.testing.assert_array_equal(bounds.rows, [1, 2, 3, 4])
    if not HAS_PYARROW:
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = tmp_path / "bounds.parquet"
    pq.write_table(pa.table({"lo": pa.array([1, None, 3], pa.int64()), "hi": [1.0, 2.0, None]}), target)
    bounds = read_bounds(str(target), "lo", "hi", None)
    np.testing.assert_array_equal(bounds.lower, [1.0, np.nan, 3.0])
    np.testing.assert_array_equal(bounds.upper, [1.0, 2.0, np.nan])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "lo,hi\n1,2\n3,2\n5,4\n",
            "lower bound 3 is above upper bound 2 in row 3 of standard input (columns 'lo' and 'hi'); 2 row(s) are so",
        ),
        (
            "lo,hi\n1,2\nNA,\n",
            "no finite bound (lower missing, upper missing) in row 3 of standard input (columns 'lo' and 'hi'): "
            "each row must bound the value on at least one side; 1 row(s) are so",
        ),
        (
            "lo,hi\n1,2\n-inf,inf\n",
            "no finite bound (lower -inf, upper inf) in row 3 of standard input (columns 'lo' and 'hi'): "
            "each row must bound the value on at least one side; 1 row(s) are so",
        ),
        (
            "lo,hi\ninf,5\n",
            "lower bound inf in row 2 of standard input (columns 'lo' and 'hi'): a lower bound is finite, "
            "or missing or -inf for none; 1 row(s) are so",
        ),
        (
            "lo,hi\n1,-inf\n",
            "upper bound -inf in row 2 of standard input (columns 'lo' and 'hi'): an upper bound is finite, "
            "or missing or inf for none; 1 row(s) are so",
        ),
        ("lo,hi\n1,2\n1,abc\n", "non-numeric value 'abc' in row 3, column 'hi' of standard input"),
        ("lo,hi\n1,2\n\n3,4\n", "row 3 of standard input is blank: a missing value? Remove the line or fill it in"),
        ("lo,x\n1,2\n", "--censored 'hi': no such column in standard input; its columns are 'lo', 'x'"),
        ("lo,hi\n", "no data in standard input: it has a header row ('lo', 'hi') and no values"),
    ],
)
def test_bounds_errors_name_the_row(text: str, message: str) -> None:
    assert bounds_error(text) == message


def test_bounds_weights_and_columns_errors() -> None:
    assert bounds_error("lo,hi\n1,2\n", "lo", "lo") == (
        "--censored needs two different columns, LOWER and UPPER; got 'lo' twice"
    )
    assert bounds_error("lo,hi,w\n1,2,1\n3,,NA\n", weights="w").startswith(
        "missing value 'NA' in row 3, column 'w' of standard input"
    )
    assert bounds_error("lo,hi,w\n1,2,1\n3,,-1\n", weights="w").startswith("negative weight -1 in row 3, column 'w'")
