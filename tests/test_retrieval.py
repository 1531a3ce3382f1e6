"""Similar-track search: segments, the head checkpoint, TrackIndex modes, save/load and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import retrieval
from engine.audio import SAMPLE_RATE, from_array
from engine.errors import IndexUnavailable, InvalidSettings, ModelUnavailable
from engine.genre import load_classifier
from engine.retrieval import (
    CODE_BYTES,
    SEGMENT_HOP_SECONDS,
    SEGMENT_SECONDS,
    Segments,
    TrackIndex,
    load_retriever,
    pack_bits,
    pool_segments,
    segment_starts,
    segments,
)
from engine.train.augment import NOISE_SNR_DB, alter
from engine.train.retrieval import nt_xent, supervised_contrastive
from tests.helpers import TINY_HEAD_DIM as DIM
from tests.helpers import save_tiny_encoder, save_tiny_head


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("models")
    classifier = load_classifier(save_tiny_encoder(folder / "tiny.pt"))
    return classifier, load_retriever(save_tiny_head(folder / "head.pt"))


def noise_clip(seconds: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    samples = (0.1 * rng.standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)
    return from_array(samples, SAMPLE_RATE)


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def track(embeddings: np.ndarray) -> Segments:
    """Synthetic segments: codes are the signs of the embeddings' first 64 random projections."""
    projection = np.random.default_rng(99).standard_normal((embeddings.shape[1], 64))
    return Segments(
        starts=np.arange(len(embeddings)) * SEGMENT_HOP_SECONDS,
        embeddings=embeddings,
        codes=pack_bits(embeddings @ projection),
    )


@pytest.fixture
def library(rng: np.random.Generator) -> dict[int, Segments]:
    return {track_id: track(unit(rng.standard_normal((5, DIM)))) for track_id in range(20)}


def build(tracks: dict[int, Segments]) -> TrackIndex:
    index = TrackIndex.empty(DIM)
    for track_id, segs in tracks.items():
        index.add(track_id, segs)
    return index


def one(segs: Segments, row: int) -> Segments:
    return Segments(
        segs.starts[row : row + 1], segs.embeddings[row : row + 1], segs.codes[row : row + 1]
    )


# --- segments -------------------------------------------------------------------------------


def test_segment_starts_cover_the_clip() -> None:
    assert segment_starts(7.0).tolist() == [0.0]
    assert segment_starts(SEGMENT_SECONDS).tolist() == [0.0]
    assert segment_starts(22.0).tolist() == [0.0, 3.0, 6.0, 9.0, 12.0]
    assert segment_starts(24.5).tolist() == [0.0, 3.0, 6.0, 9.0, 12.0, 14.5]


def test_pool_segments_takes_the_patches_centred_inside() -> None:
    embeddings = np.arange(6, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    starts = np.arange(6) * 2.0  # centres 1, 3, 5, 7, 9, 11 with 2 s patches
    pooled = pool_segments(embeddings, starts, [0.0, 4.0, 30.0], patch_seconds=2.0, seconds=6.0)
    assert pooled[0].tolist() == [1.0, 1.0]  # centres 1, 3, 5
    assert pooled[1].tolist() == [3.0, 3.0]  # centres 5, 7, 9
    assert pooled[2].tolist() == [5.0, 5.0]  # none inside: the nearest patch


def test_segments_of_a_clip(models) -> None:
    classifier, retriever = models
    result = segments(noise_clip(25.0), classifier, retriever)
    assert result.starts.tolist() == [0.0, 3.0, 6.0, 9.0, 12.0, 15.0]
    assert result.embeddings.shape == (6, DIM) and result.embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(result.embeddings, axis=1), 1.0, atol=1e-5)
    assert result.codes.shape == (6, CODE_BYTES) and result.codes.dtype == np.uint8


def test_a_short_query_is_one_segment(models) -> None:
    classifier, retriever = models
    result = segments(noise_clip(SEGMENT_SECONDS), classifier, retriever)
    assert len(result) == 1


def test_head_for_another_encoder_is_refused(models, tmp_path: Path) -> None:
    classifier, _ = models
    other = load_retriever(save_tiny_head(tmp_path / "head.pt", input_dim=32))
    with pytest.raises(ModelUnavailable, match="32-d"):
        segments(noise_clip(5.0), classifier, other)


def test_load_retriever_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(retrieval.CHECKPOINT_ENV, str(save_tiny_head(tmp_path / "head.pt")))
    retriever = load_retriever()
    assert retriever.encoder == "tiny.pt" and retriever.metrics == {"note": "test"}
    assert not retriever.head.training


def test_missing_or_corrupt_head_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="missing"):
        load_retriever(tmp_path / "nothing.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelUnavailable, match="could not be read"):
        load_retriever(tmp_path / "bad.pt")


# --- the index --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", retrieval.MODES)
def test_a_track_is_found_by_its_own_segment(library, mode: str) -> None:
    index = build(library)
    for track_id in (0, 7, 19):
        found = index.search(one(library[track_id], 2), 5, mode=mode)
        assert found[0][0] == track_id
        assert found[0][1] == pytest.approx(1.0, abs=1e-5)
        assert len(found) == 5 and len({t for t, _ in found}) == 5


def test_codes_without_rerank_score_by_hamming_distance(library) -> None:
    index = build(library)
    found = index.search(one(library[3], 0), 3, mode="hash", rerank=False)
    assert found[0] == (3, 1.0)
    assert all(score in {1.0 - 2.0 * d / 64 for d in range(65)} for _, score in found)


def test_tracks_rank_by_their_best_segment(rng: np.random.Generator) -> None:
    query = unit(rng.standard_normal((1, DIM)))
    noise = unit(rng.standard_normal((4, DIM)))
    close = unit(query + 0.05 * noise[:1])  # one segment almost the query
    medium = unit(query + 0.6 * noise)  # every segment somewhat like it
    far = unit(-query + 0.1 * noise)
    tracks = {
        1: track(np.concatenate([close, -medium[:3]])),
        2: track(medium),
        3: track(far),
    }
    found = build(tracks).search(track(query), 3, mode="float")
    assert [t for t, _ in found] == [1, 2, 3]


def test_a_longer_query_scores_the_mean_of_its_segments(library) -> None:
    index = build(library)
    query = Segments(
        starts=np.array([0.0, 3.0]),
        embeddings=np.concatenate([library[4].embeddings[:1], library[9].embeddings[:1]]),
        codes=np.concatenate([library[4].codes[:1], library[9].codes[:1]]),
    )
    found = dict(index.search(query, 20, mode="float"))
    assert set(list(found)[:2]) == {4, 9}
    best_other = max(float(library[9].embeddings[0] @ e) for e in library[4].embeddings)
    assert found[4] == pytest.approx((1.0 + best_other) / 2, abs=1e-5)


def test_long_tracks_do_not_crowd_the_shortlist(rng: np.random.Generator) -> None:
    query = unit(rng.standard_normal((1, DIM)))
    near = unit(query + 0.01 * rng.standard_normal((retrieval.SHORTLIST * 3, DIM)))
    tracks = {1: track(near), 2: track(unit(rng.standard_normal((3, DIM))))}
    found = build(tracks).search(track(query), 2, mode="hash")
    assert [t for t, _ in found] == [1, 2]


def test_add_replaces_and_remove_drops(library) -> None:
    index = build(library)
    assert len(index) == 100
    index.add(5, library[6])
    assert len(index) == 100
    assert {t for t, _ in index.search(one(library[6], 0), 2, mode="float")} == {5, 6}
    assert index.remove(5)
    assert not index.remove(5)
    assert len(index) == 95 and 5 not in set(index.track_ids.tolist())
    assert index.search(one(library[6], 0), 1)[0][0] == 6


def test_arrays_come_back_as_given(library) -> None:
    index = build(library)
    np.testing.assert_array_equal(index.embeddings[:5], library[0].embeddings)
    np.testing.assert_array_equal(index.codes[5:10], library[1].codes)
    assert index.track_ids[:6].tolist() == [0, 0, 0, 0, 0, 1]
    again = TrackIndex(index.track_ids, index.embeddings, index.codes)
    query = one(library[11], 1)
    assert again.search(query, 5, mode="lsh") == index.search(query, 5, mode="lsh")


def test_search_settings_are_checked(library) -> None:
    index = build(library)
    with pytest.raises(InvalidSettings, match="mode"):
        index.search(one(library[0], 0), 3, mode="exact")
    with pytest.raises(InvalidSettings, match="at least one"):
        index.search(one(library[0], 0), 0)
    other = Segments(np.zeros(1), unit(np.ones((1, 4))), np.zeros((1, CODE_BYTES), np.uint8))
    with pytest.raises(IndexUnavailable, match="rebuild"):
        index.search(other, 3)


def test_an_empty_index_finds_nothing(library) -> None:
    assert build({}).search(one(library[0], 0), 3) == []


def test_mismatched_arrays_are_refused() -> None:
    with pytest.raises(ValueError, match="track ids"):
        TrackIndex(np.zeros(3), np.zeros((2, DIM)), np.zeros((3, CODE_BYTES)))


# --- save and load ----------------------------------------------------------------------------


def test_save_and_load_round_trip(library, tmp_path: Path) -> None:
    index = build(library)
    index.save(tmp_path / "index")
    loaded = TrackIndex.load(tmp_path / "index")
    assert len(loaded) == len(index)
    np.testing.assert_array_equal(loaded.track_ids, index.track_ids)
    np.testing.assert_array_equal(loaded.embeddings, index.embeddings)
    np.testing.assert_array_equal(loaded.codes, index.codes)
    for mode in retrieval.MODES:
        query = one(library[8], 3)
        assert loaded.search(query, 5, mode=mode) == index.search(query, 5, mode=mode)
    assert not [p.name for p in (tmp_path / "index").iterdir() if p.name.endswith(".tmp")]


def test_saving_over_an_index_replaces_it(library, tmp_path: Path) -> None:
    index = build(library)
    index.save(tmp_path)
    index.remove(0)
    index.save(tmp_path)
    assert len(TrackIndex.load(tmp_path)) == 95


@pytest.mark.parametrize("name", ["index.json", "codes.faiss", "embeddings.faiss", "track_ids.bin"])
def test_a_missing_file_raises(library, tmp_path: Path, name: str) -> None:
    build(library).save(tmp_path)
    (tmp_path / name).unlink()
    with pytest.raises(IndexUnavailable, match="missing"):
        TrackIndex.load(tmp_path)


def test_an_empty_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(IndexUnavailable, match="rebuild"):
        TrackIndex.load(tmp_path / "never-saved")


@pytest.mark.parametrize("name", ["codes.faiss", "embeddings.faiss", "lsh.faiss", "track_ids.bin"])
def test_a_damaged_file_raises(library, tmp_path: Path, name: str) -> None:
    build(library).save(tmp_path)
    data = bytearray((tmp_path / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / name).write_bytes(bytes(data))
    with pytest.raises(IndexUnavailable, match="damaged"):
        TrackIndex.load(tmp_path)


def test_a_truncated_file_list_raises(library, tmp_path: Path) -> None:
    build(library).save(tmp_path)
    text = (tmp_path / "index.json").read_text()
    (tmp_path / "index.json").write_text(text[: len(text) // 2])
    with pytest.raises(IndexUnavailable, match="could not be read"):
        TrackIndex.load(tmp_path)


def test_an_index_of_another_version_raises(library, tmp_path: Path) -> None:
    build(library).save(tmp_path)
    meta = json.loads((tmp_path / "index.json").read_text())
    (tmp_path / "index.json").write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(IndexUnavailable, match="another version"):
        TrackIndex.load(tmp_path)


# --- training pieces --------------------------------------------------------------------------


def test_alterations(rng: np.random.Generator) -> None:
    tone = np.sin(2 * np.pi * 440 * np.arange(SAMPLE_RATE * 2) / SAMPLE_RATE).astype(np.float32)
    faster = alter(tone, "tempo_up", rng=rng)
    assert len(faster) == pytest.approx(len(tone) / 1.05, rel=0.01)
    noisy = alter(tone, "noise", rng=rng)
    snr = 10 * np.log10(np.mean(tone**2) / np.mean((noisy - tone) ** 2))
    assert snr == pytest.approx(NOISE_SNR_DB, abs=0.5)
    higher = alter(tone, "pitch_up", rng=rng)
    spectrum = np.abs(np.fft.rfft(higher))
    peak = np.argmax(spectrum) * SAMPLE_RATE / len(higher)
    assert peak == pytest.approx(440 * 2 ** (1 / 12), rel=0.01)
    with pytest.raises(ValueError, match="unknown"):
        alter(tone, "soundfont", rng=rng)


def test_contrastive_losses_prefer_matching_views() -> None:
    z = torch.nn.functional.normalize(torch.eye(4)[[0, 1, 0, 1]], dim=1)
    shuffled = torch.nn.functional.normalize(torch.eye(4)[[0, 1, 1, 0]], dim=1)
    assert nt_xent(z, 0.1) < nt_xent(shuffled, 0.1)
    same = torch.tensor([[True, False, True, False], [False, True, False, True]]).repeat(2, 1)
    assert supervised_contrastive(z, same, 0.1) < supervised_contrastive(shuffled, same, 0.1)
    assert supervised_contrastive(z, torch.zeros(4, 4, dtype=torch.bool), 0.1) == 0
