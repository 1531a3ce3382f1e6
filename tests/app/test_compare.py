"""Compare page: choosing both sides, the comparison, and errors as messages."""

from __future__ import annotations

import pytest

from engine.errors import RenderingUnavailable
from tests.app.conftest import generated_track
from tests.conftest import encode_audio

PAGE = "app_pages/compare.py"


@pytest.fixture
def compare_page(app):
    """The app, switched to the Compare page and run once."""
    app.run()
    app.switch_page(PAGE).run()
    return app


def open_with(app, *tracks) -> None:
    """Arrive at Compare from another page with these generated pieces in the session."""
    app.switch_page("app_pages/home.py").run()
    app.session_state["generated_pieces"] = tracks
    app.switch_page(PAGE).run()


def charts(app) -> list[str]:
    return [element.key for element in app.get("plotly_chart")]


def test_without_a_generated_piece_it_asks_for_both(compare_page) -> None:
    assert not compare_page.exception
    assert compare_page.title[0].value == "Compare"
    assert "Choose both pieces" in compare_page.info[0].value
    assert compare_page.radio(key="compare_Original_source").value.startswith("A real piece")
    assert compare_page.radio(key="compare_Compared with it_source").options == ["Upload a file"]
    assert not charts(compare_page)


def test_a_generated_piece_is_compared_with_real_music_of_its_style(compare_page) -> None:
    open_with(compare_page, generated_track("chinese folk"))

    assert not compare_page.exception and not compare_page.error
    assert compare_page.selectbox(key="compare_Original_piece").value.style == "chinese folk"
    assert [m.label for m in compare_page.metric] == [
        "Log-spectral distance", "Spectral convergence", "Chroma similarity", "Embedding cosine",
    ]  # fmt: skip
    assert all(m.value != "n/a" for m in compare_page.metric)
    assert charts(compare_page) == ["spectrogram_a", "spectrogram_b", "spectrogram_difference"]
    assert len(compare_page.get("audio")) == 2
    assert any("are compared" in w.value for w in compare_page.warning)  # 2 s against ~30 s


def test_two_uploads_are_compared(compare_page, make_tone) -> None:
    a = encode_audio(make_tone(seconds=3.0, frequency=440.0), 22_050, "wav")
    b = encode_audio(make_tone(seconds=3.0, frequency=330.0), 22_050, "flac")
    compare_page.radio(key="compare_Original_source").set_value("Upload a file").run()
    compare_page.file_uploader(key="compare_Original_upload").set_value(
        ("a.wav", a, "audio/wav")
    ).run()
    assert "Choose both pieces" in compare_page.info[0].value

    compare_page.file_uploader(key="compare_Compared with it_upload").set_value(
        ("b.flac", b, "audio/flac")
    ).run()

    assert not compare_page.exception and not compare_page.error
    assert charts(compare_page) == ["spectrogram_a", "spectrogram_b", "spectrogram_difference"]
    chroma = next(m for m in compare_page.metric if m.label == "Chroma similarity")
    assert float(chroma.value) < 0.9  # A against E: different harmony


def test_a_bad_upload_is_a_message(compare_page) -> None:
    open_with(compare_page, generated_track())
    compare_page.radio(key="compare_Original_source").set_value("Upload a file").run()

    compare_page.file_uploader(key="compare_Original_upload").set_value(
        ("broken.mid", b"MThd but nothing more", "audio/midi")
    ).run()

    assert not compare_page.exception
    assert "broken.mid" in compare_page.error[0].value
    assert not charts(compare_page)
    assert compare_page.radio  # the choosers are still there


def test_missing_fluidsynth_is_a_message(compare_page, monkeypatch) -> None:
    from ui import models

    def no_rendering(*args, **kwargs):
        raise RenderingUnavailable("MIDI cannot be rendered: install libfluidsynth3.")

    monkeypatch.setattr(models, "compare_bytes", no_rendering)
    open_with(compare_page, generated_track())

    assert not compare_page.exception
    assert "libfluidsynth3" in compare_page.error[0].value


def test_the_current_clip_can_be_the_original(compare_page, wav_bytes) -> None:
    from ui.clip import ClipFile

    compare_page.session_state["current_clip"] = ClipFile(
        data=wav_bytes, name="mine.wav", sha256="x", source="upload"
    )
    open_with(compare_page, generated_track())

    compare_page.radio(key="compare_Original_source").set_value("The current clip").run()

    assert not compare_page.exception and not compare_page.error
    assert any("mine.wav" in c.value for c in compare_page.caption)
    assert len(compare_page.metric) == 4
