"""The cross-modal passage model, its passages, losses, figures and data files."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import ModelUnavailable
from engine.models.crossmodal import (
    AUDIO_SIZE,
    SHEET_SIZE,
    CrossModalConfig,
    CrossModalNet,
    knn_adjacency,
    sparse_knn_adjacency,
)
from engine.passages import along, audio_input, bar_windows, sheet_input, window
from engine.train.crossmodal import loss_of, passages, piece_figures, retrieval_figures
from engine.train.crossmodal_data import (
    HELD_OUT_SOUNDFONT,
    TRAIN_SOUNDFONTS,
    load_pieces,
    paired_arrays,
    soundfont_paths,
)
from engine.train.omr_data import Source, split_of
from engine.train.piece_files import build_all
from tests.helpers import needs_fluidsynth, needs_lilypond, needs_musescore
from tests.score_pages import melody_score

BARS = [[10.0, 50.0, 0.0, 2.0], [50.0, 70.0, 2.0, 4.0], [70.0, 130.0, 4.0, 5.0]]


def test_windows_are_measured_in_bars_on_the_page_and_in_time() -> None:
    assert along([0.0, 10.0, 30.0], 1.5) == 20.0
    half = window(BARS, 0.5, 1.5)
    assert (half.left, half.right, half.start, half.end) == (30.0, 60.0, 1.0, 3.0)
    windows = bar_windows(BARS)
    assert [(w.first, w.last) for w in windows] == [(0, 1), (1, 2)]
    assert windows[1].left == 50.0 and windows[1].end == 5.0
    assert len(bar_windows(BARS[:1])) == 1


def test_inputs_have_the_model_sizes_and_ranges() -> None:
    strip = np.full((70, 140), 255, np.uint8)
    strip[30:32, :] = 0
    sheet = sheet_input(strip, 10.0, 60.0)
    assert sheet.shape == SHEET_SIZE and sheet.max() > 0.5 and sheet.min() == 0.0
    mel = np.full((96, 400), -80.0, np.float32)
    mel[:, 100:] = 0.0
    excerpt = audio_input(mel, 0.0, 4.0)
    assert excerpt.shape == AUDIO_SIZE
    assert excerpt[:, 0].max() == 0.0 and excerpt[:, -1].min() == 1.0
    assert sheet_input(strip, 500.0, 900.0).shape == SHEET_SIZE  # past the end: clamped


def test_the_knn_graph_is_symmetric_and_normalised() -> None:
    features = torch.randn(12, 8)
    adjacency = knn_adjacency(features, 3)
    assert torch.allclose(adjacency, adjacency.T)
    assert ((adjacency > 0).sum(dim=1) >= 4).all()  # itself and at least its 3 neighbours
    assert torch.linalg.eigvalsh(adjacency).max() <= 1.0 + 1e-5
    assert torch.equal(knn_adjacency(features[:1], 3), torch.ones(1, 1))


@pytest.mark.parametrize("graph", [True, False])
def test_embeddings_are_unit_vectors_in_the_common_space(graph: bool) -> None:
    model = CrossModalNet(CrossModalConfig(graph=graph, channels=(4, 8), hidden=16, dim=8))
    sheets, audio = model(torch.rand(6, 1, *SHEET_SIZE), torch.rand(6, 1, *AUDIO_SIZE))
    assert sheets.shape == audio.shape == (6, 8)
    assert torch.allclose(sheets.norm(dim=1), torch.ones(6), atol=1e-5)


@pytest.mark.parametrize("kind", ["semantic", "ranking"])
def test_training_on_fixed_pairs_brings_them_together(kind: str) -> None:
    torch.manual_seed(0)
    model = CrossModalNet(CrossModalConfig(channels=(4, 8), hidden=16, dim=8))
    sheets, audio = torch.rand(6, 1, *SHEET_SIZE), torch.rand(6, 1, *AUDIO_SIZE)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = loss_of(*model(sheets, audio), kind).item()
    for _ in range(25):
        loss = loss_of(*model(sheets, audio), kind)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.8 * first


def test_retrieval_figures_rank_each_query_s_own_passage() -> None:
    perfect = torch.eye(5)
    assert retrieval_figures(perfect, perfect) == {
        "queries": 5, "r_at_1": 1.0, "r_at_10": 1.0, "mrr": 1.0, "median_rank": 1.0}
    shuffled = retrieval_figures(perfect, perfect.roll(1, dims=0))
    assert shuffled["r_at_1"] == 0.0 and shuffled["median_rank"] == 2.0
    # Pieces ranked by their best passage: a neighbour of the same piece finds the piece.
    pieces = ["a", "a", "b", "b", "c"]
    assert piece_figures(perfect, perfect, pieces) == {"pieces": 3, "r_at_1": 1.0,
                                                       "r_at_10": 1.0}
    swapped = perfect[[1, 0, 3, 2, 4]]  # each passage of a and b finds its neighbour
    assert piece_figures(perfect, swapped, pieces)["r_at_1"] == 1.0
    assert retrieval_figures(perfect, swapped)["r_at_1"] == pytest.approx(0.2)
    # Each query finds the next passage: within its piece for the first of a and of b only.
    assert piece_figures(perfect, perfect.roll(1, dims=0), pieces)["r_at_1"] == pytest.approx(0.4)


def test_a_checkpoint_rebuilds_the_same_model(tmp_path: Path) -> None:
    model = CrossModalNet(CrossModalConfig(channels=(4, 8), hidden=16, dim=8)).eval()
    model.save(tmp_path / "m.pt", metrics={"val_r_at_1": 0.5})
    again, metrics = CrossModalNet.from_checkpoint(tmp_path / "m.pt")
    sheets, audio = torch.rand(3, 1, *SHEET_SIZE), torch.rand(3, 1, *AUDIO_SIZE)
    assert torch.allclose(model(sheets, audio)[0], again(sheets, audio)[0])
    assert metrics == {"val_r_at_1": 0.5}
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelUnavailable, match="could not be read"):
        CrossModalNet.from_checkpoint(tmp_path / "broken.pt")


@pytest.mark.skipif(
    not {*TRAIN_SOUNDFONTS, HELD_OUT_SOUNDFONT} <= set(soundfont_paths()),
    reason="the data build's soundfonts are not installed (make setup as root)")
def test_the_data_build_writes_pieces_that_load_as_passages(tmp_path: Path) -> None:
    melody = tmp_path / "melody.musicxml"
    melody_score(parts=2, bars=6).write("musicxml", melody)
    source = Source("tests/melody", str(melody), "tests")
    def build() -> list[tuple[str, int]]:
        return list(build_all(paired_arrays, [source], seed=0, out_dir=tmp_path / "data",
                              workers=1))

    assert build() == [("tests/melody", 1)]
    assert build() == [("tests/melody", -1)]  # already built: a second build resumes past it
    pieces = load_pieces(tmp_path / "data", split_of("tests/melody"))
    assert [p.piece for p in pieces] == ["tests/melody"]
    sheets, audio, names = passages(pieces)
    assert sheets.shape[1:] == (1, *SHEET_SIZE) and audio.shape[1:] == (1, *AUDIO_SIZE)
    assert len(names) == len(sheets) >= 5  # 6 bars: 5 two-bar passages, more if it wrapped
    assert random.Random(0).choice(names)[0] == "tests/melody"


def test_a_query_joins_the_graph_of_stored_items() -> None:
    torch.manual_seed(0)
    plain = CrossModalNet(CrossModalConfig(graph=False, channels=(4, 8), hidden=16, dim=8))
    graph = CrossModalNet(CrossModalConfig(graph=True, channels=(4, 8), hidden=16, dim=8,
                                           neighbours=2)).eval()
    queries, items = torch.randn(3, 40), torch.randn(10, 40)
    plain.sheet.dense[0] = torch.nn.Linear(40, 16)  # CNN features are given here
    graph.sheet.dense[0], graph.sheet.graph_in = torch.nn.Linear(40, 16), torch.nn.Linear(40, 16)
    plain.eval()
    with torch.inference_mode():
        plain_queries = plain.sheet.nodes(queries)
        assert torch.allclose(plain.sheet.embed_among(plain_queries, plain.sheet.nodes(items)),
                              plain.sheet.embed(queries))
        asked, stored = graph.sheet.nodes(queries), graph.sheet.nodes(items)
        joined = graph.sheet.embed_among(asked, stored)
        assert joined.shape == (3, 8)
        assert torch.allclose(joined.norm(dim=1), torch.ones(3), atol=1e-5)
        # Its neighbours change a query's embedding; with no stored items it stands alone.
        assert not torch.allclose(joined, graph.sheet.embed(queries, torch.eye(3)))
        alone = graph.sheet.embed_among(asked, stored.take(slice(0, 0)))
        assert torch.allclose(alone, graph.sheet.embed(queries, torch.eye(3)))


def test_a_library_graph_is_the_training_graph_made_sparse() -> None:
    keys = torch.randn(30, 6)
    sparse = sparse_knn_adjacency(keys, 4, block=7)
    assert torch.allclose(sparse.to_dense(), knn_adjacency(keys, 4), atol=1e-6)
    assert torch.equal(sparse_knn_adjacency(keys[:1], 4).to_dense(), torch.ones(1, 1))
    model = CrossModalNet(CrossModalConfig(channels=(4, 8), hidden=16, dim=8)).eval()
    model.sheet.dense[0], model.sheet.graph_in = torch.nn.Linear(6, 16), torch.nn.Linear(6, 16)
    with torch.inference_mode():
        nodes = model.sheet.nodes(keys)
        assert torch.allclose(model.sheet.embed_library(nodes), model.sheet.combine(nodes),
                              atol=1e-5)


@needs_fluidsynth
@needs_musescore
@needs_lilypond
def test_other_engravers_pages_are_read_into_the_run_s_bars() -> None:
    from engine.train.crossmodal_engravers import _engraved_piece, read_bars

    pieces = _engraved_piece(melody_score(parts=2, bars=6, key=2), "tests/melody",
                             random.Random(0), random.Random(1))
    assert [p.engraver for p in pieces] == ["verovio", "musescore", "lilypond"]
    times = [[(bar[2], bar[3]) for strip in p.bars for bar in strip] for p in pieces]
    assert len(times[0]) == 6 and times[1] == times[2] == times[0]  # the same bars, timed alike
    assert all(p.mel is pieces[0].mel for p in pieces)  # one recording under every engraving
    for piece in pieces[1:]:
        for strip, bars in zip(piece.strips, piece.bars, strict=True):
            assert strip.shape[0] > 40 and all(0 <= b[0] < b[1] <= strip.shape[1] for b in bars)
    sheets, _, names = passages(pieces[1:])
    assert len(names) >= 2 * 4  # 6 bars: at least 4 two-bar passages per engraver
    page = np.full((400, 600), 255, np.uint8)  # no staff: no bars, not the run's
    assert read_bars([page], times[0]) is None
