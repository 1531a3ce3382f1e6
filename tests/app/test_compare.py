"""Compare page: choosing both sides, the comparison, and errors as messages."""

from __future__ import annotations

import json

import pytest

from engine.compare import SetComparison
from engine.errors import RenderingUnavailable
from tests.app.conftest import generated_track
from tests.conftest import encode_audio

PAGE = "app_pages/compare.py"
PAIR_CHARTS = [
    "spectrogram_a", "spectrogram_b", "spectrogram_difference", "chroma_a", "chroma_b",
    "pitch_classes",
]  # fmt: skip


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
    assert charts(compare_page) == PAIR_CHARTS
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
    assert charts(compare_page) == PAIR_CHARTS
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


def legend_names(app, key: str) -> list[str]:
    """The trace names of one plotly chart on the page."""
    chart = next(c for c in app.get("plotly_chart") if c.key == key)
    return [trace.get("name") for trace in json.loads(chart.proto.spec)["data"]]


def test_pitch_classes_say_where_they_come_from(compare_page) -> None:
    open_with(compare_page, generated_track("folk"))  # a real MIDI piece against a WAV

    assert not compare_page.exception and not compare_page.error
    names = legend_names(compare_page, "pitch_classes")
    assert len(names) == 2
    assert names[0].endswith("(from MIDI notes)") and names[1].endswith("(from audio chroma)")


def fake_sets(style: str = "folk", pieces: int = 4) -> SetComparison:
    return SetComparison(
        style=style, pieces=pieces, seconds=15.0, ours=31.5, markov=88.25, reference=None,
        embeddings={"ours": 24, "markov": 24, "real": 24},
    )  # fmt: skip


def test_a_set_is_measured_for_the_generated_style(compare_page, monkeypatch) -> None:
    from ui import models

    calls = []

    def compare_sets(style, pieces, progress=None):
        calls.append((style, pieces))
        progress(0.5, "Markov: piece 1 of 3")
        progress(1.0, "Real music: piece 3 of 3")
        return fake_sets(style, pieces)

    monkeypatch.setattr(models, "compare_sets", compare_sets)
    open_with(compare_page, generated_track("chinese folk"))
    assert compare_page.selectbox(key="frechet_style").value == "chinese folk"
    assert not any("Frechet" in m.label for m in compare_page.metric)  # nothing until asked

    compare_page.slider(key="frechet_pieces").set_value(3).run()
    compare_page.button(key="frechet_run").click().run()

    assert not compare_page.exception and not compare_page.error
    assert calls == [("chinese folk", 3)]
    sets = {m.label: m for m in compare_page.metric if "Frechet" in m.label}
    assert sets["Ours: Frechet distance"].value == "31.5"
    assert sets["Markov: Frechet distance"].value == "88.2"
    assert "-56.8" in sets["Ours: Frechet distance"].delta
    compare_page.run()  # the result stays on the page after another rerun
    assert len([m for m in compare_page.metric if "Frechet" in m.label]) == 2
    assert len(calls) == 1


def test_a_failed_set_is_a_message(compare_page, monkeypatch) -> None:
    from ui import models

    def compare_sets(style, pieces, progress=None):
        raise RenderingUnavailable("MIDI cannot be rendered: install libfluidsynth3.")

    monkeypatch.setattr(models, "compare_sets", compare_sets)
    compare_page.button(key="frechet_run").click().run()

    assert not compare_page.exception
    assert "libfluidsynth3" in compare_page.error[0].value
    assert not any("Frechet" in m.label for m in compare_page.metric)
