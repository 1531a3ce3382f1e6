"""Search between sheet music and audio over the library's scored tracks: passages kept per
model, queries cut into windows, hits with their time or their page, system and bars, the
CLI, and what is not music."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine import audio, score_search, similar
from engine.errors import InvalidScore, NoStaves
from engine.library import Library
from engine.models.crossmodal import CrossModalConfig, CrossModalNet
from engine.passages import SPACE_PX, bar_windows
from engine.score.assemble import musicxml_bytes
from engine.score_search import (
    NothingToMatch,
    SystemStrip,
    load_model,
    match_audio,
    match_image,
    passage_index,
    sheet_queries,
)
from engine.scored import engrave_track
from tests.helpers import needs_fluidsynth, run_engine
from tests.score_pages import image_bytes, melody_score
from tests.test_similar import model_env, models  # noqa: F401 - the tiny models' fixtures


@pytest.fixture(scope="module")
def search_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random cross-modal model: the plumbing, not the accuracy, is tested with it."""
    import torch

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("crossmodal") / "tiny.pt"
    CrossModalNet(CrossModalConfig(channels=(4, 4, 8, 8), hidden=16, dim=8)).save(
        path, metrics={})
    return path


def _staff_strip(barlines: list[int]) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """A strip with one staff (lines 6 px apart) and barlines at the given columns."""
    strip = np.full((60, 300), 255, np.uint8)
    top = 18
    for line in range(5):
        strip[top + 6 * line, 6:294] = 0
    for x in barlines:
        strip[top:top + 25, x:x + 1] = 0
    strip[top + 7:top + 11, 40:46] = 0  # a note head: not a barline
    return strip, [(float(top), float(top + 24))]


def test_barlines_are_found_across_the_staff_and_bars_become_windows() -> None:
    strip, staves = _staff_strip([100, 200, 290])
    assert score_search.barlines(strip, staves, SPACE_PX) == [100.0, 200.0, 290.0]
    system = SystemStrip(strip, staves, score_search.barlines(strip, staves, SPACE_PX))
    assert system.bar_edges() == [6.0, 100.0, 200.0, 290.0]
    spans = {(round(w.left), round(w.right)) for w in system.windows()}
    assert spans == {(6, 200), (100, 290)}  # two bars at a time, as the library's passages
    two = SystemStrip(strip, staves, [100.0])  # the second bar ends where the staff does
    assert [(round(w.left), round(w.right)) for w in two.windows()] == [(6, 294)]
    # No barline: windows of several widths slide over the snippet.
    bare, staves = _staff_strip([])
    sliding = SystemStrip(bare, staves, []).windows()
    assert len(sliding) > 3 and min(w.right - w.left for w in sliding) < 200


def test_a_time_signature_is_not_taken_for_a_barline() -> None:
    strip, staves = _staff_strip([100, 200, 290])
    strip[18:43, 30] = 0
    strip[[21, 33], 30] = 255  # a column inked over most of the staff, with gaps (a digit)
    assert 0.85 <= (strip[18:43, 30] < 128).mean() < 0.95
    assert score_search.barlines(strip, staves, SPACE_PX) == [100.0, 200.0, 290.0]
    strip[18:43, 30] = 0  # inked as fully as the barlines: it counts
    assert score_search.barlines(strip, staves, SPACE_PX)[0] == 30.0


def test_queries_that_hold_no_music_are_refused_clearly() -> None:
    with pytest.raises(NoStaves, match="No staff of five lines"):
        sheet_queries(image_bytes(np.full((300, 500), 255, np.uint8)), "blank.png")
    noise = np.random.default_rng(0).integers(0, 256, (300, 500)).astype(np.uint8)
    with pytest.raises(NoStaves):
        sheet_queries(image_bytes(noise), "photo.png")
    with pytest.raises(InvalidScore, match="notes.txt"):
        sheet_queries(b"these are not pixels", "notes.txt")
    silence = audio.from_array(np.zeros(22_050 * 3, np.float32), 22_050, name="quiet.wav")
    with pytest.raises(NothingToMatch, match="quiet.wav is silent"):
        score_search.audio_queries(silence)


def test_a_library_without_scores_has_nothing_to_match(tmp_path: Path,
                                                       search_checkpoint: Path) -> None:
    with (Library.open(tmp_path / "studio") as library,
          pytest.raises(NothingToMatch, match="No track in the library keeps a score")):
        passage_index(library, load_model(search_checkpoint))


@pytest.fixture
def scored_library(tmp_path: Path, models: similar.SearchModels) -> Path:  # noqa: F811
    """A library of two scored melodies (6 bars each) and one plain recording."""
    home = tmp_path / "studio"
    with Library.open(home) as library:
        for key in (0, 3):
            xml = musicxml_bytes(melody_score(parts=2, bars=6, key=key))
            similar.add_scored(library, engrave_track(xml, f"melody{key}.musicxml"),
                               title=f"melody {key}", source="test", models=models)
        tone = np.sin(np.arange(22_050 * 4) / 22_050 * 2 * np.pi * 440).astype(np.float32)
        similar.add_clip(library, audio.from_array(0.3 * tone, 22_050, name="tone.wav"),
                         title="tone", source="test", models=models)
    return home


@needs_fluidsynth
def test_scored_tracks_are_cut_into_passages_kept_per_model(
        scored_library: Path, search_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_model(search_checkpoint)
    with Library.open(scored_library) as library:
        index = passage_index(library, model)
        expected = sum(len(bar_windows([[b.left, b.right, b.start, b.end] for b in s.bars]))
                       for track_id in library.scored_track_ids()
                       for s in library.score(track_id).systems)
        assert len(index.passages) == expected >= 2 * 5
        assert {p.track_id for p in index.passages} == {1, 2}  # not the plain recording
        assert index.sheet_embeddings.shape == index.audio_embeddings.shape == (expected, 8)
        folder = scored_library / "passages" / model.identity
        assert len(list(folder.glob("*.npz"))) == 2 + 1  # each track's, and their graph's
        # A second index reads the stored passages and graph: nothing is cut or joined again.
        monkeypatch.setattr(score_search, "_track_passages",
                            lambda *a: pytest.fail("passages cut again"))
        with monkeypatch.context() as patch:
            patch.setattr(type(model.net.sheet), "embed_library",
                          lambda *a: pytest.fail("graph joined again"))
            again = passage_index(library, model)
        assert torch_equal(again.audio_embeddings, index.audio_embeddings)
        # A deleted track's passages go, and the graph is joined again without them.
        gone = library.track(1).sha256
        library.delete_track(1)
        fewer = passage_index(library, model)
        assert {p.track_id for p in fewer.passages} == {2}
        assert len(fewer.sheet_embeddings) == len(fewer.passages) < expected
        assert not (folder / f"{gone}.npz").exists()
        assert len(list(folder.glob(f"{score_search.JOINED_PREFIX}*"))) == 1
        # A damaged graph file is joined again, not fatal.
        next(folder.glob(f"{score_search.JOINED_PREFIX}*")).write_bytes(b"not numpy")
        assert torch_equal(passage_index(library, model).sheet_embeddings,
                           fewer.sheet_embeddings)


def torch_equal(a: object, b: object) -> bool:
    import torch

    return bool(torch.allclose(a, b, atol=1e-4))


@needs_fluidsynth
def test_hits_say_when_a_track_plays_it_and_where_a_score_holds_it(
        scored_library: Path, search_checkpoint: Path) -> None:
    model = load_model(search_checkpoint)
    with Library.open(scored_library) as library:
        index = passage_index(library, model)
        stored = library.score(2)
        page = cv2.imread(str(stored.pages[0]), cv2.IMREAD_GRAYSCALE)
        system = stored.systems[0]
        snippet = page[int(system.top) - 60:int(system.bottom) + 60,
                       int(system.bars[0].left) - 12:int(system.bars[2].right) + 12]
        hits = match_image(index, model, image_bytes(snippet), k=5)
        assert sorted(h.track.track_id for h in hits) == [1, 2]
        assert hits[0].score >= hits[1].score
        assert all(0 <= h.passage.start < h.passage.end for h in hits)
        clip = audio.load(library.audio_path(library.track(1).sha256))
        (hit,) = match_audio(index, model, clip, k=1)
        bars = index.scores[hit.track.track_id].systems[hit.passage.system].bars
        assert hit.page >= 1 and hit.system >= 1
        assert hit.measures == (bars[hit.passage.first].number, bars[hit.passage.last].number)


@needs_fluidsynth
def test_cli_matches_both_ways_and_refuses_what_is_not_music(
        tmp_path: Path, scored_library: Path, search_checkpoint: Path,
        model_env: dict[str, str]) -> None:  # noqa: F811
    env = {**model_env, score_search.CHECKPOINT_ENV: str(search_checkpoint)}
    home = str(scored_library)
    with Library.open(scored_library) as library:
        page = library.score(1).pages[0]
        sound = library.audio_path(library.track(2).sha256)
    found = run_engine("match-score", str(page), "--k", "2", "--library", home, "--json",
                       env=env)
    assert found.returncode == 0, found.stderr
    answer = json.loads(found.stdout)
    assert answer["query"] == str(page) and len(answer["results"]) == 2
    assert set(answer["results"][0]) == {"track_id", "title", "source", "score", "start", "end"}
    heard = run_engine("match-audio", str(sound), "--k", "1", "--library", home, "--json",
                       env=env)
    assert heard.returncode == 0, heard.stderr
    (result,) = json.loads(heard.stdout)["results"]
    assert set(result) == {"track_id", "title", "source", "score", "page", "system", "measures"}
    assert len(result["measures"]) == 2 and all(isinstance(m, int) for m in result["measures"])

    blank = tmp_path / "blank.png"
    blank.write_bytes(image_bytes(np.full((200, 400), 255, np.uint8)))
    quiet = tmp_path / "quiet.wav"
    quiet.write_bytes(audio.encode_wav(np.zeros(22_050, np.float32), 22_050))
    for command, query, message in (("match-score", blank, "No staff of five lines"),
                                    ("match-audio", quiet, "silent")):
        refused = run_engine(command, str(query), "--library", home, env=env)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert f"{query}: " in refused.stderr and message in refused.stderr
    empty = run_engine("match-audio", str(sound), "--library", str(tmp_path / "new"), env=env)
    assert empty.returncode == 1 and "No track in the library keeps a score" in empty.stderr
    zero = run_engine("match-audio", str(sound), "--k", "0", "--library", home, env=env)
    assert zero.returncode == 2 and "at least 1" in zero.stderr


@needs_fluidsynth
def test_the_shipped_model_finds_a_melody_both_ways(tmp_path: Path,
                                                    models: similar.SearchModels) -> None:  # noqa: F811
    """Three different tunes in the library: a system of one, engraved on its own, finds
    its recording first, and its recording finds its score first."""
    import music21

    tunes = {"scale": melody_score(parts=1, bars=8),
             "leaps": music21.converter.parse(
                 "tinyNotation: 4/4 c4 g4 e'4 c'4 a2 f2 d4 b4 g'4 d'4 c'1 "
                 "e4 c4 e'2 g2 g'4 f'4 e'4 d'4 c'2 c2 B1"),
             "dance": music21.converter.parse(
                 "tinyNotation: 3/4 g8 a8 b4 d'4 c'8 b8 a4 f#4 g2. e'8 d'8 c'4 b4 "
                 "a8 g8 f#4 d4 g4 b4 d'4 g'2. d'8 c'8 b4 g4")}
    model = load_model()
    with Library.open(tmp_path / "studio") as library:
        for title, tune in tunes.items():
            similar.add_scored(library, engrave_track(musicxml_bytes(tune), f"{title}.xml"),
                               title=title, source="test", models=models)
        index = passage_index(library, model)
        for track in library.tracks():
            stored = library.score(track.track_id)
            page = cv2.imread(str(stored.pages[0]), cv2.IMREAD_GRAYSCALE)
            system = stored.systems[0]
            snippet = page[max(int(system.top) - 60, 0):int(system.bottom) + 60]
            (found,) = match_image(index, model, image_bytes(snippet), k=1)
            assert found.track.title == track.title
            clip = audio.load(library.audio_path(track.sha256))
            (heard,) = match_audio(index, model, clip, k=1)
            assert heard.track.title == track.title


@needs_fluidsynth
def test_a_scored_track_without_its_audio_is_left_out_not_fatal(
        scored_library: Path, search_checkpoint: Path) -> None:
    model = load_model(search_checkpoint)
    with Library.open(scored_library) as library:
        library.audio_path(library.track(1).sha256).unlink()
        index = passage_index(library, model)
        assert {p.track_id for p in index.passages} == {2}
        assert len(index.skipped) == 1 and index.skipped[0].startswith("melody 0: ")
