"""Similar page: the empty library, results for a clip, the genre filter, adding the query,
a library track as the query, and errors, with the engine's model calls stubbed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from engine.audio import SAMPLE_RATE, from_array
from engine.errors import ModelUnavailable
from engine.library import Library
from engine.similar import TrackDescription
from tests.app.conftest import fake_description, fake_moods, fake_prediction

PAGE = "app_pages/similar.py"
GENRES = ("classical", "folk", "jazz")


def fill_library(home: Path) -> list[int]:
    """Three tracks with audio, of the genres in GENRES, described by fake_description(n)."""
    ids = []
    with Library.open(home) as library:
        for n, genre in enumerate(GENRES):
            t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
            clip = from_array(0.2 * np.sin(2 * np.pi * (220 + 110 * n) * t), SAMPLE_RATE)
            description = fake_description(n, genre=genre)
            track_id, _ = library.add_clip(
                clip,
                title=f"Track {genre}",
                source="test",
                genres=description.genres,
                moods=description.moods,
                segments=description.segments,
            )
            ids.append(track_id)
    return ids


@pytest.fixture
def stub_description(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[str]]:
    """Replace ui.models.describe_bytes (the query's analysis); returns the names asked for."""
    from ui import models

    def install(
        description: TrackDescription | None = None, *, raises: Exception | None = None
    ) -> list[str]:
        calls: list[str] = []

        def describe_bytes(data: bytes, name: str) -> TrackDescription:
            calls.append(name)
            if raises is not None:
                raise raises
            return description or fake_description(1, genre="folk")

        monkeypatch.setattr(models, "describe_bytes", describe_bytes)
        return calls

    return install


@pytest.fixture
def similar_page(app, stub_classifier, stub_moods):
    stub_classifier(fake_prediction(top="folk"))
    stub_moods(fake_moods(top="joy"))
    app.run()
    app.switch_page(PAGE).run()
    return app


def upload(app, wav_bytes: bytes) -> None:
    app.file_uploader[0].set_value(("tune.wav", wav_bytes, "audio/wav")).run()


def titles(app) -> list[str]:
    return [m.value.strip("*") for m in app.markdown if m.value.startswith("**Track ")]


def test_an_empty_library_offers_the_demo(similar_page, stub_description, wav_bytes) -> None:
    calls = stub_description()
    assert not similar_page.exception
    assert similar_page.button(key="similar_demo").label == "Build the demo library"
    assert not [b for b in similar_page.button if b.key == "reanalyse"]
    assert "Upload, record or choose a clip" in similar_page.info[0].value

    upload(similar_page, wav_bytes)

    assert not similar_page.exception and not similar_page.error
    assert "no tracks to search" in similar_page.info[0].value
    assert calls == ["tune.wav"]


def test_results_for_a_clip(similar_page, studio_home, stub_description, wav_bytes) -> None:
    fill_library(studio_home)
    stub_description(fake_description(1, genre="folk"))  # the folk track's own segments
    similar_page.run()
    upload(similar_page, wav_bytes)

    assert not similar_page.exception and not similar_page.error
    assert titles(similar_page)[0] == "Track folk"
    assert len(titles(similar_page)) == 3
    assert similar_page.subheader[0].value == "The 3 closest tracks"
    assert any(m.value.endswith("score 1.00]") for m in similar_page.markdown)
    assert len(similar_page.main.get("audio")) == 1 + 3  # the query's player, one per track
    assert any("sounds like **Folk**" in m.value for m in similar_page.markdown)
    assert similar_page.button(key="reanalyse")  # fill_library's tracks: earlier models

    genre = next(s for s in similar_page.main.selectbox if s.label == "Genre")
    genre.select("jazz").run()
    assert titles(similar_page) == ["Track jazz"]


def test_add_the_query_to_the_library(
    similar_page, studio_home, stub_description, wav_bytes
) -> None:
    fill_library(studio_home)
    stub_description(fake_description(7, genre="jazz"))
    similar_page.run()
    upload(similar_page, wav_bytes)

    similar_page.button(key="add_query").click().run()
    assert not similar_page.exception and not similar_page.error
    with Library.open(studio_home) as library:
        assert [t.title for t in library.tracks()][0] == "tune"
        assert library.tracks()[0].source == "upload: tune.wav"
    assert "Added “tune”" in similar_page.toast[0].value

    similar_page.button(key="add_query").click().run()
    assert "Already in the library" in similar_page.toast[0].value
    with Library.open(studio_home) as library:
        assert len(library.tracks()) == 4


def test_a_library_track_as_the_query(app, studio_home, stub_description) -> None:
    ids = fill_library(studio_home)
    calls = stub_description()
    app.run()
    app.switch_page("app_pages/library.py").run()
    app.selectbox(key="library_track").select(ids[0]).run()

    app.button(key="find_similar").click().run()

    assert not app.exception and not app.error
    assert app.title[0].value == "Similar"
    assert any("library track **Track classical**" in m.value for m in app.markdown)
    assert "Track classical" not in titles(app)[1:]  # itself is left out of the results
    assert len(titles(app)) == 1 + 2  # the query's card, then the two others
    assert calls == []  # its stored segments are the query: no analysis

    app.switch_page(PAGE)  # AppTest reruns the page it was last told, not st.switch_page's
    next(b for b in app.button if b.label == "Search with a clip instead").click().run()
    assert "Upload, record or choose a clip" in app.info[0].value


def test_a_missing_model_is_a_message(
    similar_page, studio_home, stub_description, wav_bytes
) -> None:
    fill_library(studio_home)
    stub_description(raises=ModelUnavailable("The search model is missing."))
    similar_page.run()
    upload(similar_page, wav_bytes)

    assert not similar_page.exception
    assert "search model is missing" in similar_page.error[0].value


def test_pick_a_library_track_on_the_page(similar_page, studio_home, stub_description) -> None:
    ids = fill_library(studio_home)
    stub_description()
    similar_page.run()

    similar_page.selectbox(key="similar_pick_track").select(ids[1]).run()

    assert not similar_page.exception and not similar_page.error
    assert any("library track **Track folk**" in m.value for m in similar_page.markdown)
    assert titles(similar_page)[0] == "Track folk" and "Track folk" not in titles(similar_page)[1:]


def test_search_with_the_generated_piece(similar_page, studio_home, stub_description) -> None:
    from tests.app.conftest import generated_track

    fill_library(studio_home)
    calls = stub_description(fake_description(2, genre="jazz"))
    piece = generated_track("pop", seed=7)
    similar_page.session_state["generated_pieces"] = (piece,)
    similar_page.run()

    button = similar_page.button(key="use_generated")
    assert button.label == "Search with the generated piece (pop, seed 7)"
    button.click().run()

    assert not similar_page.exception and not similar_page.error
    assert calls and calls[-1].endswith(".wav")
    assert titles(similar_page)[0] == "Track jazz"
    assert similar_page.session_state["current_clip"].data == piece.wav
