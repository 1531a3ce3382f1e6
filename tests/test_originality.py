"""engine.originality's guard: hashes of every run of `limit` notes of the training pieces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.errors import ModelUnavailable
from engine.originality import COPY_LIMIT, CopyGuard, interval_symbols


def symbols_of(pitches: list[int], step: int = 6) -> np.ndarray:
    return interval_symbols(np.arange(len(pitches)) * step, np.array(pitches))


@pytest.fixture
def training(rng: np.random.Generator) -> list[int]:
    return [int(p) for p in rng.integers(40, 90, size=120)]


def test_the_guard_finds_a_run_of_limit_notes_in_any_key(
    training: list[int], tmp_path: Path
) -> None:
    guard = CopyGuard.build({"folk": [symbols_of(training)], "rock": []})
    assert guard.limit == COPY_LIMIT
    copied = [p + 5 for p in training[40 : 40 + COPY_LIMIT]]  # transposed
    assert guard.copies("folk", symbols_of(copied))
    assert not guard.copies("folk", symbols_of(copied[:-1]))  # one note short
    assert not guard.copies("folk", symbols_of(copied, step=12))  # another rhythm
    assert not guard.copies("rock", symbols_of(copied))  # another style's pieces
    assert not guard.copies("jazz", symbols_of(copied))  # a style it does not know
    assert not guard.copies("folk", np.zeros(0, dtype=np.int64))
    guard.save(tmp_path / "guard.npz")
    loaded = CopyGuard.load(tmp_path / "guard.npz")
    assert loaded.limit == guard.limit and set(loaded.tables) == {"folk", "rock"}
    assert all(np.array_equal(loaded.tables[s], guard.tables[s]) for s in guard.tables)
    assert loaded.copies("folk", symbols_of(copied))


def test_a_missing_or_broken_guard_file_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip")
    for path in (broken, tmp_path / "missing.npz"):
        with pytest.raises(ModelUnavailable, match="originality guard"):
            CopyGuard.load(path)
