"""The integer codes and row orders shared by the stages (``crosswalk.stages.kernel.codes``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crosswalk.stages.kernel import codes

TEXT = st.text(alphabet="aZé0 1-", max_size=3)


def _expected(frame: pd.DataFrame, key: list[str]) -> np.ndarray:
    return np.asarray(frame.sort_values(key, kind="stable").index)


def _order(frame: pd.DataFrame, key: list[str]) -> np.ndarray:
    return codes.key_order(frame, key)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.tuples(TEXT, TEXT, st.integers(0, 3)), min_size=0, max_size=60),
)
def test_sort_order_is_a_stable_sort_by_the_keys(rows: list[tuple[str, str, int]]) -> None:
    frame = pd.DataFrame(rows, columns=["a", "b", "c"]).astype(
        {"a": "string[pyarrow]", "b": "string[pyarrow]", "c": "int64"}
    )
    for key in (["a", "b", "c"], ["a", "c"], ["b"], ["c", "a"]):
        np.testing.assert_array_equal(_order(frame, key), _expected(frame, key))


def test_a_few_leading_groups_sort_as_one_sort(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    n = 30_000
    frame = pd.DataFrame(
        {
            "source": rng.choice(["hcai", "cdph", "cms"], n),
            "record_id": pd.array(rng.integers(0, 5_000, n).astype(str), dtype="string[pyarrow]"),
        }
    )
    by_groups = _order(frame, ["source", "record_id"])
    monkeypatch.setattr(codes, "_FEW_GROUPS", 0)  # Arrow's sort by both keys at once
    np.testing.assert_array_equal(by_groups, _order(frame, ["source", "record_id"]))
    np.testing.assert_array_equal(by_groups, _expected(frame, ["source", "record_id"]))


def test_ranks_inverts_an_order() -> None:
    order = np.array([2, 0, 3, 1])
    np.testing.assert_array_equal(codes.ranks(order)[order], np.arange(4))


@settings(max_examples=150, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.text(alphabet="aZé€𝄞0 ", max_size=3)), max_size=40))
def test_sorted_codes_number_the_values_in_sorted_order(values: list[str | None]) -> None:
    series = pd.Series(values, dtype="string[pyarrow]")
    got, distinct = codes.sorted_codes(series)
    want, uniques = pd.factorize(series, sort=True)
    np.testing.assert_array_equal(got, want)
    assert distinct.to_pylist() == list(uniques)
