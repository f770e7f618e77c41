"""``nllkit datasets``: list the datasets shipped with nllkit, or show one.

The datasets and their citations live in :mod:`nllkit.datasets`; this module
only prints them: a table or JSON of all of them, the details of one, or one
as CSV (``--csv``) to feed ``nllkit fit -`` or another program.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import textwrap
from typing import Any

from nllkit import datasets
from nllkit.datasets import Dataset

NAME = "datasets"
#: The one-line summary in ``nllkit --help``.
HELP = "list the public-domain datasets shipped with nllkit"

DESCRIPTION = """\
List the public-domain datasets shipped with nllkit: the number of
observations, the values they take, the distribution family 'nllkit fit'
fits by default, a title and the source. Name one to see its description,
source, licence and values."""

EPILOG = f"""\
examples:
  nllkit datasets
  nllkit datasets --format json
  nllkit datasets {datasets.DEFAULT}
  nllkit datasets fatigue-life --csv > fatigue-life.csv"""

_WIDTH = 96


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``nllkit datasets`` to `parser`.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    """
    parser.add_argument("name", nargs="?", metavar="NAME", help="show this dataset: " + ", ".join(datasets.names()))
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    parser.add_argument("--csv", action="store_true", help="print the values of dataset NAME as CSV")


def summary(dataset: Dataset) -> dict[str, Any]:
    """A dataset's description as a JSON-ready dict, without its values.

    Parameters
    ----------
    dataset : nllkit.datasets.Dataset

    Returns
    -------
    dict
        ``name``, ``title``, ``n``, ``support``, ``default_family``,
        ``reference``, ``source``, ``url``, ``licence`` and ``description``.

    Examples
    --------
    >>> record = summary(datasets.load("horse-kicks"))
    >>> record["n"], record["support"], record["default_family"]
    (200, 'counts', 'poisson')
    """
    return {
        "name": dataset.name,
        "title": dataset.title,
        "n": dataset.n,
        "support": dataset.support,
        "default_family": dataset.default_family,
        "reference": dataset.reference,
        "source": dataset.source,
        "url": dataset.url,
        "licence": dataset.licence,
        "description": dataset.description,
    }


def _table(rows: list[list[str]]) -> str:
    """Rows of cells as left-aligned columns, the first row a header underlined with dashes."""
    widths = [max(len(row[j]) for row in rows) for j in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def listing(loaded: list[Dataset]) -> str:
    """The table printed by ``nllkit datasets``.

    Parameters
    ----------
    loaded : list of nllkit.datasets.Dataset

    Returns
    -------
    str
        One row per dataset, with a header.

    Examples
    --------
    >>> print(listing([datasets.load("horse-kicks")]))
    name         n    support  default family  title                                                  source
    -----------  ---  -------  --------------  -----------------------------------------------------  ------------------
    horse-kicks  200  counts   poisson         Deaths by horse kick per Prussian army corps and year  Bortkiewicz (1898)
    """
    header = ["name", "n", "support", "default family", "title", "source"]
    rows = [[d.name, str(d.n), d.support, d.default_family, d.title, d.reference] for d in loaded]
    return _table([header, *rows])


def details(dataset: Dataset) -> str:
    """The text printed by ``nllkit datasets NAME``.

    Parameters
    ----------
    dataset : nllkit.datasets.Dataset

    Returns
    -------
    str
        Its title, size, support, default family, description, source,
        licence and values.
    """
    lines = [f"{dataset.name}: {dataset.title}", ""]
    fields = [
        ("observations", str(dataset.n)),
        ("support", dataset.support),
        ("default family", dataset.default_family),
        ("description", dataset.description),
        ("source", dataset.source),
        ("url", dataset.url),
        ("licence", dataset.licence),
        ("values", _values_text(dataset)),
    ]
    indent = " " * 16
    for label, text in fields:
        wrapped = textwrap.wrap(text, _WIDTH - len(indent), break_on_hyphens=False) or [""]
        lines.append(f"{label + ':':<16}{wrapped[0]}")
        lines.extend(indent + line for line in wrapped[1:])
    return "\n".join(lines)


def _number(value: float) -> str:
    """A value as written in the dataset's file: integers without a decimal point."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _values_text(dataset: Dataset) -> str:
    if dataset.weights is None:
        return " ".join(_number(v) for v in dataset.values)
    pairs = zip(dataset.values, dataset.weights, strict=True)
    return ", ".join(f"{_number(v)} ({_number(w)} times)" for v, w in pairs)


def _write_csv(dataset: Dataset) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(dataset.columns)
    if dataset.weights is None:
        writer.writerows([_number(v)] for v in dataset.values)
    else:
        writer.writerows([_number(v), _number(w)] for v, w in zip(dataset.values, dataset.weights, strict=True))


def run(args: argparse.Namespace) -> int:
    """Print the datasets, or one of them, as the options of ``nllkit datasets`` ask.

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
        An unknown dataset name (the message lists the datasets), or
        ``--csv`` without a name or with ``--format json``.
    """
    if args.csv and args.name is None:
        raise ValueError(f"--csv needs a dataset NAME, one of: {', '.join(datasets.names())}")
    if args.csv and args.format == "json":
        raise ValueError("--csv and --format json cannot be combined")
    if args.name is None:
        loaded = [datasets.load(name) for name in datasets.names()]
        if args.format == "json":
            print(json.dumps({"default": datasets.DEFAULT, "datasets": [summary(d) for d in loaded]}, indent=2))
        else:
            print(listing(loaded))
            print(f"\nThe default of 'nllkit fit' with no file is {datasets.DEFAULT}. Details: nllkit datasets NAME")
        return 0
    dataset = datasets.load(args.name)
    if args.csv:
        _write_csv(dataset)
    elif args.format == "json":
        record = summary(dataset)
        record["values"] = dataset.values.tolist()
        record["weights"] = None if dataset.weights is None else dataset.weights.tolist()
        print(json.dumps(record, indent=2))
    else:
        print(details(dataset))
    return 0
