"""Classify page: no clip, errors, and results, with the genre model stubbed."""

from __future__ import annotations

import pytest

from engine.errors import InvalidAudio, ModelUnavailable
from tests.app.conftest import fake_prediction
from tests.conftest import encode_audio

PAGE = "app_pages/classify.py"


@pytest.fixture
def classify_page(app):
    """The app, switched to the Classify page and run once."""
    app.run()
    app.switch_page(PAGE).run()
    return app


def charts(app) -> list[str]:
    """Keys of the plotly charts on the page."""
    return [element.key for element in app.get("plotly_chart")]


def test_without_a_clip_the_page_asks_for_one(classify_page, stub_classifier) -> None:
    calls = stub_classifier()

    assert not classify_page.exception
    assert classify_page.title[0].value == "Classify"
    assert "choose an example" in classify_page.info[0].value
    assert not charts(classify_page)
    assert calls == []  # nothing analysed before there is a clip
    # The three ways in are on the page.
    assert len(classify_page.file_uploader) == 1
    assert len(classify_page.audio_input) == 1
    assert len(classify_page.main.selectbox) == 1


def test_uploaded_clip_shows_genre_charts(classify_page, stub_classifier, wav_bytes) -> None:
    calls = stub_classifier(fake_prediction(top="r&b"))

    classify_page.file_uploader[0].set_value(("song.wav", wav_bytes, "audio/wav")).run()

    assert not classify_page.exception
    assert not classify_page.error
    assert calls == [(wav_bytes, "song.wav")]
    assert classify_page.metric[0].value == "R&B"
    assert charts(classify_page) == ["genre_bars", "genre_timeline", "spectrogram"]
    assert classify_page.get("audio")  # the player
    assert classify_page.download_button[0].label == "Download"
    # The clip stays current for other pages, and the sidebar says which it is.
    assert classify_page.session_state["current_clip"].name == "song.wav"
    assert classify_page.sidebar.markdown[0].value == "**song.wav**"
    assert "0:04" in classify_page.sidebar.caption[0].value


def test_clip_stays_current_across_pages(classify_page, stub_classifier, wav_bytes) -> None:
    stub_classifier()
    classify_page.file_uploader[0].set_value(("song.wav", wav_bytes, "audio/wav")).run()

    classify_page.switch_page("app_pages/home.py").run()
    assert classify_page.sidebar.markdown[0].value == "**song.wav**"

    classify_page.switch_page(PAGE).run()
    assert not classify_page.info
    assert charts(classify_page)


def test_invalid_audio_is_an_error_message_not_a_crash(
    classify_page, stub_classifier, wav_bytes
) -> None:
    stub_classifier(raises=InvalidAudio("song.wav is truncated. Try exporting it again."))

    classify_page.file_uploader[0].set_value(("song.wav", wav_bytes, "audio/wav")).run()

    assert not classify_page.exception
    assert classify_page.error[0].value == "song.wav is truncated. Try exporting it again."
    assert not charts(classify_page)
    # The rest of the page keeps working: the picker and player are still there.
    assert classify_page.file_uploader and classify_page.get("audio")


def test_missing_model_is_an_error_message(classify_page, stub_classifier, wav_bytes) -> None:
    stub_classifier(raises=ModelUnavailable("No genre model: checkpoints/genre.pt is missing."))

    classify_page.file_uploader[0].set_value(("song.wav", wav_bytes, "audio/wav")).run()

    assert not classify_page.exception
    assert "checkpoints/genre.pt" in classify_page.error[0].value


def test_unreadable_upload_is_reported_by_the_real_loader(classify_page, monkeypatch) -> None:
    # No stub for the loader: engine.audio rejects the bytes before any model is needed.
    from ui import models

    def no_model():
        raise AssertionError("the model must not be loaded for unreadable audio")

    monkeypatch.setattr(models, "genre_classifier", no_model)
    text = b"these are not the sounds you are looking for\n" * 20

    classify_page.file_uploader[0].set_value(("notes.mp3", text, "audio/mpeg")).run()

    assert not classify_page.exception
    assert "notes.mp3" in classify_page.error[0].value
    assert "Supported formats" in classify_page.error[0].value
    assert "cannot be decoded" in classify_page.sidebar.caption[0].value


def test_loader_warnings_are_shown(classify_page, stub_classifier, wav_bytes) -> None:
    stub_classifier(fake_prediction(warnings=("song.wav is silent: results mean little.",)))

    classify_page.file_uploader[0].set_value(("song.wav", wav_bytes, "audio/wav")).run()

    assert [w.value for w in classify_page.warning] == ["song.wav is silent: results mean little."]
    assert charts(classify_page)


def test_picking_an_example(classify_page, stub_classifier) -> None:
    calls = stub_classifier()
    title = classify_page.selectbox[0].options[0]

    classify_page.selectbox[0].select(title).run()

    assert not classify_page.exception
    clip = classify_page.session_state["current_clip"]
    assert clip.source == "example"
    assert calls[-1][1] == clip.name
    assert charts(classify_page)


def test_upload_replaces_example_and_removal_forgets_it(
    classify_page, stub_classifier, wav_bytes
) -> None:
    stub_classifier()
    classify_page.selectbox[0].select(classify_page.selectbox[0].options[0]).run()

    classify_page.file_uploader[0].set_value(("song.wav", wav_bytes, "audio/wav")).run()
    assert classify_page.session_state["current_clip"].name == "song.wav"
    assert classify_page.selectbox[0].value is None  # the picker no longer claims an example

    classify_page.file_uploader[0].set_value(None).run()
    assert "current_clip" not in classify_page.session_state
    assert classify_page.info  # back to asking for a clip


def test_recording_becomes_the_current_clip(classify_page, stub_classifier, make_tone) -> None:
    calls = stub_classifier()
    recording = encode_audio(make_tone(seconds=2.0), 22_050, "wav")

    classify_page.audio_input[0].set_value(("recording.wav", recording, "audio/wav")).run()

    assert not classify_page.exception
    assert classify_page.session_state["current_clip"].source == "recording"
    assert calls == [(recording, "recording.wav")]
    assert charts(classify_page)


def test_short_clip_without_windows_still_shows_overall_genre(
    classify_page, stub_classifier, wav_bytes
) -> None:
    prediction = fake_prediction()
    stub_classifier(
        type(prediction)(genres=prediction.genres, top="jazz", segments=(), warnings=())
    )

    classify_page.file_uploader[0].set_value(("song.wav", wav_bytes, "audio/wav")).run()

    assert not classify_page.exception
    assert charts(classify_page) == ["genre_bars", "spectrogram"]
