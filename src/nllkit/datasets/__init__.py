"""Small public-domain datasets shipped with nllkit, for fitting examples.

Each dataset is a CSV file inside this package (a header row, then one
observation per row, or a value column and a count column) described by a
:class:`Dataset`: what it measures, where it comes from and why it is in the
public domain. ``nllkit fit`` with no file fits :data:`DEFAULT`, the horse
kicks; ``nllkit datasets`` lists them; ``docs/datasets.md`` cites them.

=================  =====  ==============  ==============  ==========================================
name               n      support         default family  source
=================  =====  ==============  ==============  ==========================================
horse-kicks        200    counts          poisson         Bortkiewicz (1898)
heat-flow-meter    195    positive        normal          NIST/SEMATECH e-Handbook 1.4.2.8
fatigue-life       101    positive        weibull         NIST/SEMATECH e-Handbook 1.4.2.9
=================  =====  ==============  ==============  ==========================================

Examples
--------
>>> from nllkit import datasets
>>> datasets.names()
('horse-kicks', 'heat-flow-meter', 'fatigue-life')
>>> kicks = datasets.load("horse-kicks")
>>> kicks.values, kicks.weights
(array([0., 1., 2., 3., 4.]), array([109.,  65.,  22.,   3.,   1.]))
>>> kicks.n, kicks.default_family
(200, 'poisson')
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT", "Dataset", "load", "names"]

FloatArray = npt.NDArray[np.float64]

#: What values a dataset can take (the families that can fit it depend on it): non-negative
#: integers, positive reals or any reals, named as by nllkit.distributions' support kinds.
SupportKind = Literal["counts", "positive", "real"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """One embedded dataset: its values and where they come from.

    Attributes
    ----------
    name : str
        The short name given to :func:`load` and on the command line.
    title : str
        A one-line title.
    values : ndarray, shape (m,)
        float64 observations, or the distinct values when `weights` is given.
    weights : ndarray, shape (m,), or None
        float64 counts of each entry of `values` (for a value-count table such
        as the horse kicks), or None when every observation is listed once.
    description : str
        What was measured, in which unit, and how the data were collected.
    source : str
        The full citation of the publication the values are taken from.
    url : str
        Where the source can be read.
    reference : str
        A short form of `source` for tables, such as ``'Bortkiewicz (1898)'``.
    licence : str
        Why the data may be redistributed: the reason it is in the public domain.
    support : {'counts', 'positive', 'real'}
        The values the data can take: non-negative integers, positive reals
        or any reals.
    default_family : str
        The distribution family ``nllkit fit`` fits to it by default.
    columns : tuple of str
        The names of the value column and, for a value-count table, the count
        column, as in the packaged CSV file.
    """

    name: str
    title: str
    values: FloatArray
    weights: FloatArray | None
    description: str
    source: str
    url: str
    reference: str
    licence: str
    support: SupportKind
    default_family: str
    columns: tuple[str, ...]

    @property
    def n(self) -> int:
        """The number of observations: the total count for a value-count table.

        Examples
        --------
        >>> from nllkit import datasets
        >>> datasets.load("heat-flow-meter").n
        195
        """
        return int(self.values.size if self.weights is None else round(float(self.weights.sum())))


@dataclass(frozen=True)
class _Entry:
    """A dataset's metadata and where its values are: a CSV file in this package."""

    file: str
    value_column: str
    count_column: str | None
    title: str
    description: str
    source: str
    url: str
    reference: str
    licence: str
    support: SupportKind
    default_family: str


_NIST_LICENCE = (
    "Public domain: published by the U.S. National Institute of Standards and Technology in the "
    "NIST/SEMATECH e-Handbook of Statistical Methods, a work of the U.S. federal government, which is "
    "not subject to copyright in the United States (17 U.S.C. 105)."
)
_NIST_HANDBOOK = "NIST/SEMATECH e-Handbook of Statistical Methods, https://www.itl.nist.gov/div898/handbook/"

_ENTRIES: dict[str, _Entry] = {
    "horse-kicks": _Entry(
        file="horse_kicks.csv",
        value_column="deaths",
        count_column="corps_years",
        title="Deaths by horse kick per Prussian army corps and year",
        description=(
            "Deaths by horse kick in 10 Prussian army corps over 20 years, 1875 to 1894: 200 corps-years, "
            "of which 109 had no death, 65 one, 22 two, 3 three and 1 four (122 deaths). Bortkiewicz's "
            "classic example of the Poisson distribution as the law of rare events. Stored as a value-count "
            "table: the deaths 0 to 4 with the number of corps-years that had them."
        ),
        source=(
            "L. von Bortkewitsch (Bortkiewicz), Das Gesetz der kleinen Zahlen, Leipzig: B. G. Teubner, 1898. "
            "The data are discussed by M. P. Quine and E. Seneta, Bortkiewicz's data and the law of small "
            "numbers, International Statistical Review 55 (1987), 173-181."
        ),
        url="https://digibus.ub.uni-stuttgart.de/viewer/!fulltext/1543508614348/10/",
        reference="Bortkiewicz (1898)",
        licence=(
            "Public domain by age: published in 1898; Ladislaus von Bortkiewicz died in 1931, more than 70 years ago."
        ),
        support="counts",
        default_family="poisson",
    ),
    "heat-flow-meter": _Entry(
        file="heat_flow_meter.csv",
        value_column="calibration_factor",
        count_column=None,
        title="Heat flow meter calibration factor (NIST, 1990)",
        description=(
            "The calibration factor of a heat flow meter, computed from 195 consecutive readings taken by "
            "Bob Zarr of NIST on 24 January 1990 in a calibration and stability analysis (ASTM C-16; "
            "dataset ZARR13.DAT). The e-Handbook uses it to show a well-behaved process "
            "whose underlying assumptions hold (mean 9.261460, standard deviation 0.022789)."
        ),
        source=f"{_NIST_HANDBOOK}, section 1.4.2.8, Heat Flow Meter 1 (data: ZARR13.DAT, Bob Zarr, NIST, 1990).",
        url="https://www.itl.nist.gov/div898/handbook/eda/section4/eda428.htm",
        reference="NIST/SEMATECH e-Handbook 1.4.2.8",
        licence=_NIST_LICENCE + " The measurements were made at NIST by a NIST scientist.",
        support="positive",
        default_family="normal",
    ),
    "fatigue-life": _Entry(
        file="fatigue_life.csv",
        value_column="kilocycles",
        count_column=None,
        title="Fatigue life of aluminium alloy strips, in kilocycles",
        description=(
            "Fatigue life (thousands of cycles until rupture) of 101 rectangular strips of 6061-T6 "
            "aluminium sheeting under periodic loading with a maximum stress of 21,000 psi, as reported by "
            "Birnbaum and Saunders (1958) and used by the e-Handbook's case study of choosing a lifetime "
            "distribution (dataset BIRNSAUN.DAT). The values are stored in the order of the NIST file."
        ),
        source=(
            f"{_NIST_HANDBOOK}, section 1.4.2.9, Fatigue Life of Aluminum Alloy Specimens (data: BIRNSAUN.DAT); "
            "from Z. W. Birnbaum and S. C. Saunders, A statistical model for life-length of materials, "
            "Journal of the American Statistical Association 53 (1958), 151-160."
        ),
        url="https://www.itl.nist.gov/div898/handbook/eda/section4/eda429.htm",
        reference="NIST/SEMATECH e-Handbook 1.4.2.9",
        licence=(
            _NIST_LICENCE + " The measurements themselves are facts first reported by Birnbaum and Saunders "
            "(1958); facts are not subject to copyright."
        ),
        support="positive",
        # The three positive two-parameter families fit about equally well here (log-likelihoods
        # -746.1 Weibull, -747.3 gamma, -750.6 lognormal); Weibull is the usual first choice for
        # fatigue lifetimes.
        default_family="weibull",
    ),
}

#: The dataset ``nllkit fit`` fits when it is given no file.
DEFAULT = "horse-kicks"


def names() -> tuple[str, ...]:
    """The names of the embedded datasets, the default (``'horse-kicks'``) first.

    Returns
    -------
    tuple of str
        Each is accepted by :func:`load`.

    Examples
    --------
    >>> from nllkit import datasets
    >>> "fatigue-life" in datasets.names()
    True
    """
    return tuple(_ENTRIES)


def load(name: str) -> Dataset:
    """Load an embedded dataset.

    Parameters
    ----------
    name : str
        One of :func:`names`.

    Returns
    -------
    Dataset
        Fresh arrays on every call: changing them does not change the next load.

    Raises
    ------
    ValueError
        `name` is not a dataset; the message lists the datasets.

    Examples
    --------
    >>> from nllkit import datasets
    >>> flow = datasets.load("heat-flow-meter")
    >>> flow.n, flow.support, flow.default_family
    (195, 'positive', 'normal')
    >>> print(f"{flow.values.mean():.5f} {flow.values.std(ddof=1):.5f}")
    9.26146 0.02279
    >>> datasets.load("horse_kicks")
    Traceback (most recent call last):
    ...
    ValueError: no dataset 'horse_kicks'; the datasets are: horse-kicks, heat-flow-meter, fatigue-life
    """
    entry = _ENTRIES.get(name)
    if entry is None:
        raise ValueError(f"no dataset {name!r}; the datasets are: {', '.join(_ENTRIES)}")
    values, counts = _read(entry)
    return Dataset(
        name=name,
        title=entry.title,
        values=values,
        weights=counts,
        description=entry.description,
        source=entry.source,
        url=entry.url,
        reference=entry.reference,
        licence=entry.licence,
        support=entry.support,
        default_family=entry.default_family,
        columns=(entry.value_column,) if entry.count_column is None else (entry.value_column, entry.count_column),
    )


def _read(entry: _Entry) -> tuple[FloatArray, FloatArray | None]:
    """The value column (and the count column, if any) of a packaged CSV file."""
    text = resources.files(__name__).joinpath(entry.file).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    values = np.array([float(row[entry.value_column]) for row in rows], dtype=np.float64)
    if entry.count_column is None:
        return values, None
    counts = np.array([float(row[entry.count_column]) for row in rows], dtype=np.float64)
    return values, counts
