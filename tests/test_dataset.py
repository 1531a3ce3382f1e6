"""The genre dataset's manifest names what rendered each example, so derived caches follow it."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine.train import dataset
from engine.train.dataset import (
    MANIFEST_COLUMNS,
    MANIFEST_NAME,
    PiecePlan,
    SegmentPlan,
    load_manifest,
    run_piece,
)
from engine.train.teacher import teacher_path

PLAN = PiecePlan(
    source="bach",
    piece_id="p1",
    kind="score",
    ref="p1.mid",
    genres=("classical",),
    split="train",
    style="chorale",
    segments=(SegmentPlan("bach-p1-s0", "FluidR3_GM.sf2", 12.0, seed=0),),
)


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[PiecePlan]:
    """Stand in for FluidSynth: each render writes a second of silence; returns the plans."""
    done: list[PiecePlan] = []

    def render(plan: PiecePlan, data_dir: Path, cache_dir: Path, fonts: dict) -> tuple:
        done.append(plan)
        rows = []
        for seg in plan.segments:
            path = cache_dir / "audio" / plan.source / f"{seg.example_id}.npy"
            dataset._save(path, np.zeros(dataset.SAMPLE_RATE, dtype=np.float32))
            fields = {"domain": "rendered", "source": plan.source, "soundfont": seg.soundfont}
            row = dataset._row(seg.example_id, path, cache_dir, plan, duration="1.00", style="")
            rows.append(row | fields)
        return rows, []

    monkeypatch.setattr(dataset, "_render_piece", render)
    return done


def write_manifest(cache_dir: Path, rows: list[dict[str, str]], columns: tuple[str, ...]) -> None:
    with (cache_dir / MANIFEST_NAME).open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def test_rows_name_the_plan_that_rendered_them_also_when_the_piece_is_skipped(
    tmp_path: Path, renders: list[PiecePlan]
) -> None:
    first = run_piece(PLAN, tmp_path, tmp_path, {})
    again = run_piece(PLAN, tmp_path, tmp_path, {})  # finished: read from its marker
    assert len(renders) == 1
    digest = first.rows[0]["render_digest"]
    assert len(digest) == 16 and again.rows == first.rows

    other_font = replace(PLAN, segments=(replace(PLAN.segments[0], soundfont="TimGM6mb.sf2"),))
    rerendered = run_piece(other_font, tmp_path, tmp_path, {})
    assert len(renders) == 2  # the plan changed, so the piece is rendered again
    assert rerendered.rows[0]["example_id"] == first.rows[0]["example_id"]
    assert rerendered.rows[0]["render_digest"] != digest


def test_derived_caches_of_an_example_rendered_otherwise_are_not_read(
    tmp_path: Path, renders: list[PiecePlan]
) -> None:
    rows = run_piece(PLAN, tmp_path, tmp_path, {}).rows
    write_manifest(tmp_path, list(rows), MANIFEST_COLUMNS)
    (example,) = load_manifest(tmp_path)
    assert example.render_digest == rows[0]["render_digest"]
    assert example.cache_name == f"bach-p1-s0-{example.render_digest}"

    other_font = replace(PLAN, segments=(replace(PLAN.segments[0], soundfont="TimGM6mb.sf2"),))
    write_manifest(tmp_path, list(run_piece(other_font, tmp_path, tmp_path, {}).rows),
                   MANIFEST_COLUMNS)  # fmt: skip
    (rebuilt,) = load_manifest(tmp_path)
    assert teacher_path(tmp_path, rebuilt) != teacher_path(tmp_path, example)


def test_a_manifest_of_an_earlier_build_keeps_its_caches(tmp_path: Path) -> None:
    row = {"example_id": "mer4q-1", "audio_path": "audio/mer4q/mer4q-1.npy", "genres": "jazz",
           "domain": "real", "source": "mer4q", "piece_id": "mer4q-1", "soundfont": "",
           "split": "train", "duration": "30.00", "style": ""}  # fmt: skip
    write_manifest(tmp_path, [row], MANIFEST_COLUMNS[:-1])  # no render_digest column
    (example,) = load_manifest(tmp_path)
    assert example.render_digest == "" and example.cache_name == "mer4q-1"
    assert teacher_path(tmp_path, example).name == "mer4q-1.npz"
