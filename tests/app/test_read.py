"""Read page: no page, bad files, a page read (by a tiny random reader), corrections, sending
the score on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import needs_fluidsynth
from tests.score_pages import engraved_page, image_bytes, melody_score

PAGE = "app_pages/read.py"


@pytest.fixture
def tiny_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """ui.score.score_reader replaced by a tiny random reader: the page's logic is under test."""
    from engine.models.omr import ReaderConfig, StaffReader
    from engine.score.encoding import vocabulary
    from engine.score.reader import load_reader
    from ui import score

    torch.manual_seed(0)
    path = tmp_path / "reader.pt"
    StaffReader(ReaderConfig(len(vocabulary()), channels=(4, 4, 8, 8), hidden=8, layers=1)).save(
        path, vocab=vocabulary(), metrics={})
    reader = load_reader(path)
    monkeypatch.setattr(score, "score_reader", lambda: reader)
    return reader


@pytest.fixture(scope="module")
def duet_png() -> bytes:
    page, _ = engraved_page(melody_score(parts=2, bars=6))
    return image_bytes(page)


@pytest.fixture
def read_page(app, tiny_reader):
    app.run()
    app.switch_page(PAGE).run()
    return app


def text_area(app, index: int):
    """The symbols editor of staff `index` of the reading on show."""
    return next(t for t in app.text_area if t.key.endswith(f"_{index}"))


def metrics(app) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


def test_without_a_page_the_page_asks_for_one(read_page) -> None:
    assert not read_page.exception
    assert read_page.title[0].value == "Read"
    assert "Upload a page of sheet music" in read_page.info[0].value
    assert len(read_page.file_uploader) == 1
    examples = read_page.selectbox(key="read_example").options
    assert len(examples) == 3 and "Bach" in examples[0]


def test_an_uploaded_page_is_shown_found_and_read(read_page, duet_png: bytes) -> None:
    read_page.file_uploader[0].set_value(("duet.png", duet_png, "image/png")).run()

    assert not read_page.exception
    figures = metrics(read_page)
    assert (figures["Pages"], figures["Parts"]) == ("1", "2")
    assert [c.key for c in read_page.get("plotly_chart")] == ["read_page_figure"]
    labels = [b.label for b in read_page.download_button]
    assert labels == ["MusicXML", "MIDI"]
    systems = int(figures["Systems"])
    assert len(read_page.expander) == 2 * systems  # one editor per staff
    assert len(read_page.text_area) == 2 * systems


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"no picture here", "not an image or PDF"),
    (image_bytes(np.full((500, 400), 255, np.uint8)), "No staff of five lines"),
])
def test_bad_files_give_a_message_and_no_traceback(read_page, data: bytes, message: str) -> None:
    read_page.file_uploader[0].set_value(("page.png", data, "image/png")).run()
    assert not read_page.exception
    assert message in read_page.error[0].value
    assert not read_page.get("plotly_chart")


def test_a_missing_model_is_a_message(app, monkeypatch: pytest.MonkeyPatch, duet_png) -> None:
    from engine.errors import ModelUnavailable
    from ui import score

    def missing():
        raise ModelUnavailable("The score reader's model file is missing.")

    monkeypatch.setattr(score, "score_reader", missing)
    app.run()
    app.switch_page(PAGE).run()
    app.file_uploader[0].set_value(("duet.png", duet_png, "image/png")).run()
    assert not app.exception
    assert "model file is missing" in app.error[0].value


def test_a_staff_is_corrected_as_text(read_page, duet_png: bytes) -> None:
    read_page.file_uploader[0].set_value(("duet.png", duet_png, "image/png")).run()
    typed = "clef:G2 time:4/4 C4 quarter D4 quarter E4 half | C4 E4 G4 whole |]"
    text_area(read_page, 0).input(typed)
    apply = [b for b in read_page.button if b.label == "Apply"][0]
    apply.click().run()

    assert not read_page.exception
    assert not [e for e in read_page.error if "Not symbols" in e.value]
    assert text_area(read_page, 0).value.split() == typed.split()
    reading = next(iter(read_page.session_state["score_readings"].values()))
    assert reading.staves[0].tokens == typed.split()


def test_a_wrong_correction_names_the_wrong_words(read_page, duet_png: bytes) -> None:
    read_page.file_uploader[0].set_value(("duet.png", duet_png, "image/png")).run()
    before = next(iter(read_page.session_state["score_readings"].values())).staves[0].tokens
    text_area(read_page, 0).input("C4 crotchet |")
    [b for b in read_page.button if b.label == "Apply"][0].click().run()
    assert any("Not symbols the reader knows: crotchet" in e.value for e in read_page.error)
    after = next(iter(read_page.session_state["score_readings"].values())).staves[0].tokens
    assert after == before


def test_an_example_page_is_read(read_page) -> None:
    read_page.selectbox(key="read_example").select_index(0).run()
    assert not read_page.exception
    assert metrics(read_page)["Parts"] == "4"  # a four-voice chorale


def test_the_score_continues_in_generate(read_page, duet_png: bytes) -> None:
    read_page.file_uploader[0].set_value(("duet.png", duet_png, "image/png")).run()
    read_page.button(key="read_to_generate").click().run()
    assert not read_page.exception
    assert read_page.title[0].value == "Generate"
    assert read_page.radio(key="generate_start").value == "Continue the score I read"
    assert "duet.mid" in read_page.caption[-1].value or any(
        "duet.mid" in c.value for c in read_page.caption)


@needs_fluidsynth
def test_the_score_is_played_and_sent_to_classify(read_page, duet_png: bytes,
                                                  stub_classifier) -> None:
    stub_classifier()
    read_page.file_uploader[0].set_value(("duet.png", duet_png, "image/png")).run()
    text_area(read_page, 0).input("clef:G2 C4 E4 G4 whole |]")
    [b for b in read_page.button if b.label == "Apply"][0].click().run()  # the tiny reader
    assert read_page.get("audio")  # reads no notes; now there is one chord to play
    read_page.button(key="read_to_classify").click().run()
    assert not read_page.exception
    assert read_page.title[0].value == "Classify"
    assert read_page.session_state["current_clip"].name == "duet.wav"
    assert read_page.session_state["current_clip"].source == "score"


@needs_fluidsynth
def test_the_score_read_is_added_to_the_library_with_its_score(
    read_page, duet_png: bytes, studio_home, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.library import Library
    from tests.app.conftest import fake_description
    from ui import models

    monkeypatch.setattr(models, "describe_for_library", lambda clip: fake_description(3))
    read_page.file_uploader[0].set_value(("duet.png", duet_png, "image/png")).run()
    text_area(read_page, 0).input("clef:G2 time:4/4 C4 E4 G4 whole |]")
    [b for b in read_page.button if b.label == "Apply"][0].click().run()  # the tiny reader
    read_page.button(key="read_to_library").click().run()
    assert not read_page.exception and not read_page.error, [e.value for e in read_page.error]
    with Library.open(studio_home) as library:
        (track,) = library.tracks()
        stored = library.score(track.track_id)
        assert track.title == "duet" and track.source == "read from duet.png"
        assert stored is not None and b"<score-partwise" in stored.musicxml


def test_a_second_file_shows_its_own_symbols(read_page, duet_png: bytes) -> None:
    read_page.file_uploader[0].set_value(("duet.png", duet_png, "image/png")).run()
    text_area(read_page, 0).input("clef:G2 C4 whole |]")
    [b for b in read_page.button if b.label == "Apply"][0].click().run()
    page, _ = engraved_page(melody_score(parts=1, bars=4))
    read_page.file_uploader[0].set_value(("solo.png", image_bytes(page), "image/png")).run()
    assert not read_page.exception
    reading = read_page.session_state["score_readings"]
    solo = list(reading.values())[-1]
    assert solo.name == "solo.png"
    assert text_area(read_page, 0).value.split() == solo.staves[0].tokens


def test_a_reading_that_cannot_be_written_keeps_the_page_and_editors(
    read_page, duet_png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.errors import InvalidScore
    from engine.score import reading

    def broken(score):
        raise InvalidScore("The score as read cannot be written as MusicXML (test).")

    monkeypatch.setattr(reading, "musicxml_bytes", broken)
    read_page.file_uploader[0].set_value(("duet.png", duet_png, "image/png")).run()
    assert not read_page.exception
    assert any("cannot be written" in e.value for e in read_page.error)
    assert not read_page.download_button
    assert [c.key for c in read_page.get("plotly_chart")] == ["read_page_figure"]
    assert read_page.text_area
