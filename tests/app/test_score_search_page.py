"""Score search page: a library without scores, a snippet of sheet music finding recordings,
a clip finding scores with their page, and queries that hold no music (a tiny random
cross-modal model: the page's logic is under test, not the model's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.audio import SAMPLE_RATE, encode_wav
from engine.library import Library
from engine.score.assemble import musicxml_bytes
from tests.app.conftest import fake_description
from tests.helpers import needs_fluidsynth
from tests.score_pages import engraved_page, image_bytes, melody_score

PAGE = "app_pages/score_search.py"


@pytest.fixture
def tiny_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """ui.score_search.search_model replaced by a tiny random cross-modal model."""
    from engine.models.crossmodal import CrossModalConfig, CrossModalNet
    from engine.score_search import load_model
    from ui import score_search

    torch.manual_seed(0)
    path = tmp_path / "crossmodal.pt"
    CrossModalNet(CrossModalConfig(channels=(4, 4, 8, 8), hidden=16, dim=8)).save(path,
                                                                                   metrics={})
    model = load_model(path)
    monkeypatch.setattr(score_search, "search_model", lambda: model)
    score_search._indexes().clear()
    yield model
    score_search._indexes().clear()


def add_scores(home: Path, count: int = 2) -> None:
    """Scored melodies in the library, as `library add` keeps them (fake descriptions)."""
    from engine import similar
    from engine.scored import engrave_track

    with Library.open(home) as library:
        for key in range(count):
            scored = engrave_track(musicxml_bytes(melody_score(parts=2, bars=5, key=key)),
                                   f"melody{key}.musicxml")
            added = similar.add_clip(library, scored.clip, title=f"Melody {key}", source="test",
                                     description=fake_description(key))
            similar.keep_score(library, added.track.track_id, scored)


@pytest.fixture
def search_page(app, tiny_model, studio_home: Path):
    def open_page():
        app.run()
        app.switch_page(PAGE).run()
        return app

    return open_page


def test_a_library_without_scores_says_how_to_add_them(search_page) -> None:
    page = search_page()
    assert not page.exception
    assert page.title[0].value == "Score search"
    assert "No track in the library keeps a score" in page.info[0].value
    assert "Library page" in page.info[0].value or "MusicXML" in page.info[0].value


@needs_fluidsynth
def test_example_scores_can_be_added_from_the_page(search_page, studio_home: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from ui import models, score_search

    monkeypatch.setattr(models, "describe_for_library", lambda clip: fake_description(0))
    monkeypatch.setattr(score_search, "EXAMPLE_SCORES", {"bach/bwv66.6": "Bach: BWV 66.6"})
    page = search_page()
    page.button(key="score_search_examples").click().run()
    assert not page.exception
    with Library.open(studio_home) as library:
        assert [t.title for t in library.tracks()] == ["Bach: BWV 66.6"]
        assert library.scored_track_ids() == [1]
    assert not page.info or "No track in the library keeps a score" not in page.info[0].value
    page.selectbox(key="score_search_example").select_index(0).run()  # the Read page's example
    assert not page.exception
    assert "Recordings that play it, best first" in [s.value for s in page.subheader]


@needs_fluidsynth
def test_a_snippet_finds_the_recordings_that_play_it(search_page, studio_home: Path) -> None:
    add_scores(studio_home)
    page = search_page()
    assert not page.exception
    assert "Upload, photograph or choose a few bars" in page.info[0].value
    snippet, _ = engraved_page(melody_score(parts=2, bars=2, key=1))
    page.file_uploader(key="score_search_upload").set_value(
        ("bars.png", image_bytes(snippet), "image/png")).run()
    assert not page.exception
    assert "Recordings that play it, best first" in [s.value for s in page.subheader]
    captions = [c.value for c in page.caption if c.value.startswith("Plays it at ")]
    assert len(captions) == 2 and all("bars " in c for c in captions)


@needs_fluidsynth
def test_a_clip_finds_the_scores_and_bars_it_plays(search_page, studio_home: Path) -> None:
    from ui.clip import ClipFile
    from ui.models import sha256_of

    add_scores(studio_home)
    page = search_page()
    with Library.open(studio_home) as library:
        sound = library.audio_path(library.track(1).sha256).read_bytes()
    page.session_state["current_clip"] = ClipFile(sound, "melody.ogg", sha256_of(sound), "upload")
    page.slider(key="score_search_k").set_value(1).run()
    assert not page.exception
    assert "Scores that hold it, best first" in [s.value for s in page.subheader]
    assert [c.key for c in page.get("plotly_chart")] == ["score_search_page_0"]
    assert any("Page 1, system " in c.value for c in page.caption)


@needs_fluidsynth
def test_queries_without_music_say_so(search_page, studio_home: Path) -> None:
    from ui.clip import ClipFile
    from ui.models import sha256_of

    add_scores(studio_home, count=1)
    page = search_page()
    blank = image_bytes(np.full((200, 400), 255, np.uint8))
    page.file_uploader(key="score_search_upload").set_value(
        ("blank.png", blank, "image/png")).run()
    quiet = encode_wav(np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE)
    page.session_state["current_clip"] = ClipFile(quiet, "quiet.wav", sha256_of(quiet), "upload")
    page.run()
    assert not page.exception
    errors = " ".join(e.value for e in page.error)
    assert "No staff of five lines was found in blank.png" in errors
    assert "quiet.wav is silent" in errors
