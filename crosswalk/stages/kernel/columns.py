"""The converted-columns cache: one side of aligned pairs, each column converted once to
what the comparators read (see :class:`Columns`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from matchers._text import as_string
from matchers.compare import Texts, as_texts

#: Columns the comparisons read as numbers; every other column is read as text.
_FLOAT_COLUMNS = ("n_lat", "n_lon")
#: Columns derived from another column of the batch.
_DERIVED = {"n_zip3": "n_zip"}


class Columns:
    """One side of aligned pairs, each column converted once to what the comparators read.

    Built from a batch (columns are converted when first read), or from the columns of
    another :class:`Columns` taken at positions (:meth:`take`): the matcher converts the
    published records once and takes the candidates' rows of the result.

    Converting a column caches it here, so one object is for one thread at a time; a
    runner that shares one between threads wraps it (``crosswalk.runners.local.LazyColumns``).
    What a stage reads of it: :meth:`text`, :meth:`number`, :meth:`take`.
    """

    def __init__(
        self,
        frame: pd.DataFrame | None = None,
        *,
        texts: dict[str, Texts] | None = None,
        floats: dict[str, np.ndarray] | None = None,
        length: int = 0,
    ) -> None:
        self.frame = frame
        self.texts: dict[str, Texts] = dict(texts or {})
        self.floats: dict[str, np.ndarray] = dict(floats or {})
        self.length = len(frame) if frame is not None else length
        #: Results shared by several comparisons of this side against another.
        self.memo: dict[tuple[str, int], tuple[Columns, tuple[np.ndarray, ...]]] = {}
        #: Numeric columns without any value, or with some (see :meth:`all_missing`).
        self._all_missing: dict[str, bool] = {}
        #: The columns and positions this side was taken from (see :meth:`take`).
        self.taken_from: tuple[Columns, np.ndarray] | None = None

    @classmethod
    def of(cls, side: pd.DataFrame | Columns) -> Columns:
        return side if isinstance(side, Columns) else cls(side.reset_index(drop=True))

    def __len__(self) -> int:
        return self.length

    def __contains__(self, column: str) -> bool:
        if column in self.texts or column in self.floats:
            return True
        if self.taken_from is not None:
            return column in self.taken_from[0]
        return self.frame is not None and _DERIVED.get(column, column) in self.frame

    def text(self, column: str) -> Texts:
        """The column as :class:`~matchers.compare.Texts` (converted once)."""
        got = self.texts.get(column)
        if got is None:
            if self.taken_from is not None:
                parent, positions = self.taken_from
                got = self.texts[column] = parent.text(column).take(positions)
                return got
            if self.frame is None:
                raise KeyError(column)
            values = self.frame[_DERIVED.get(column, column)]
            values = as_string(values)
            if column in _DERIVED:
                values = values.str[:3]
            got = self.texts[column] = as_texts(values)
        return got

    def number(self, column: str) -> np.ndarray:
        """The column as float64."""
        got = self.floats.get(column)
        if got is None:
            if self.taken_from is not None:
                parent, positions = self.taken_from
                if parent.all_missing(column):  # nothing to gather (a listing without it)
                    got = np.full(len(positions), np.nan)
                else:
                    got = parent.number(column)[positions]
                self.floats[column] = got
                return got
            if self.frame is None:
                raise KeyError(column)
            got = self.floats[column] = self.frame[column].to_numpy(dtype="float64")
        return got

    def all_missing(self, column: str) -> bool:
        """Whether the numeric ``column`` has no value on any row (computed once)."""
        if column not in self._all_missing:
            self._all_missing[column] = bool(np.isnan(self.number(column)).all())
        return self._all_missing[column]

    def names(self) -> list[str]:
        """The columns of the frame this side was made from."""
        return [] if self.frame is None else [str(c) for c in self.frame.columns]

    def prepared(self, columns: list[str]) -> Columns:
        """This side with ``columns`` (and the derived ones) converted now, ready to :meth:`take`."""
        wanted = [*columns, *(d for d, src in _DERIVED.items() if src in columns)]
        for c in wanted:
            if c in _FLOAT_COLUMNS:
                self.number(c)
            else:
                self.text(c)
        return self

    def take(self, positions: np.ndarray) -> Columns:
        """The columns at ``positions``, each taken when a comparison first reads it, so
        that a batch takes only the columns its comparisons read (convert them first, once
        for all the batches: :meth:`prepared`)."""
        out = Columns(length=len(positions))
        out.taken_from = (self, positions)
        return out
