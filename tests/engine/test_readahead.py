"""Sources read ahead (while the engine loads) give the records a plain read gives, and a
file changed after its read-ahead is read again."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from crosswalk import readahead
from crosswalk.config import load_config
from crosswalk.sources import load_sources


def test_read_ahead_gives_the_plain_read(slice_dir: Path) -> None:
    config = load_config(slice_dir / "slice.toml")
    plain = load_sources(config)
    readahead.start(config)
    src = config.sources[0]
    ahead = readahead.take(src.resolved_path(config.base_dir), src.format, src.sheet)
    assert ahead is not None and ahead.sheet is not None and ahead.sheet.rows
    assert ahead.data == src.resolved_path(config.base_dir).read_bytes()

    readahead.start(config)
    again = load_sources(config)
    pd.testing.assert_frame_equal(again.records, plain.records)
    assert [i.sha256 for i in again.info] == [i.sha256 for i in plain.info]
    # Every read-ahead was handed over: nothing is left behind.
    assert all(
        readahead.take(s.resolved_path(config.base_dir), s.format, s.sheet) is None
        for s in config.sources
    )


def test_a_file_changed_after_its_read_ahead_is_read_again(slice_dir: Path) -> None:
    config = load_config(slice_dir / "slice.toml")
    src = next(s for s in config.sources if s.format == "csv")
    csv = src.resolved_path(config.base_dir)
    readahead.start(config)
    readahead._pending[(csv, src.format, src.sheet)].result()  # the read-ahead is done
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    frame.loc[0, src.fields.name] = "A NAME WRITTEN AFTER THE READ-AHEAD"
    frame.to_csv(csv, index=False)  # a longer file: its stamp differs whatever the clock
    loaded = load_sources(config)
    names = loaded.records.loc[loaded.records["source"] == src.name, "name"]
    assert "A NAME WRITTEN AFTER THE READ-AHEAD" in set(names)
