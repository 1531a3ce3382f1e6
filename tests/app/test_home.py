"""Home page and the shared sidebar, with the engine's model calls stubbed."""

from __future__ import annotations

from pathlib import Path

from tests.app.conftest import ROOT


def test_landing_page_explains_the_studio(app) -> None:
    app.run()

    assert not app.exception
    assert app.title[0].value == "Music Studio"
    assert "genre" in app.markdown[0].value
    assert [b.label for b in app.main.button] == [
        "Classify an example clip",
        "Generate a folk tune",
        "Compare a new chorale with Bach",
        "Tag the moods of an example",
        "Find tracks like an example",
        "Open the library",
        "Read an example page",
        "Open score search",
    ]
    headings = " ".join(h.value for h in app.subheader)
    for capability in ("Classify", "Generate", "Compare", "Mood", "Similar", "Library", "Read",
                       "Score search"):
        assert capability in headings


def test_sidebar_says_no_clip_yet(app) -> None:
    app.run()
    assert app.sidebar.subheader[0].value == "Current clip"
    assert "No clip yet" in app.sidebar.caption[0].value


def test_classify_an_example_opens_classify_with_the_example(app, stub_classifier) -> None:
    calls = stub_classifier()
    app.run()

    app.button[0].click().run()

    assert not app.exception
    assert app.title[0].value == "Classify"
    clip = app.session_state["current_clip"]
    assert clip.source == "example"
    assert (ROOT / "examples" / clip.name).is_file()
    assert calls and calls[0][1] == clip.name
    assert clip.name in app.sidebar.markdown[0].value
    # The example picker on Classify shows which example is current.
    assert app.selectbox[0].value is not None
    assert not app.warning  # no Streamlit complaint about setting the picker's state


def test_missing_fluidsynth_is_named(app, monkeypatch) -> None:
    from ui import machine

    monkeypatch.setattr(
        machine, "rendering_problem", lambda: "FluidSynth is missing. Install it with `apt`."
    )
    app.run()
    assert any("FluidSynth is missing" in w.value for w in app.warning)


def test_no_warning_when_rendering_works(app, monkeypatch) -> None:
    from ui import machine

    monkeypatch.setattr(machine, "rendering_problem", lambda: None)
    app.run()
    assert not app.warning


def test_no_pages_directory_next_to_the_entry_point() -> None:
    # A pages/ folder beside streamlit_app.py switches Streamlit to its old multipage mode
    # on the first request after a start: pages then run without the sidebar and with the
    # wrong navigation. Pages live in app_pages/.
    assert not (Path(ROOT) / "pages").exists()


def test_generate_a_folk_tune_opens_generate_with_the_tune(app) -> None:
    app.run()

    next(b for b in app.button if b.label == "Generate a folk tune").click().run()

    assert not app.exception
    assert app.title[0].value == "Generate"
    assert app.selectbox(key="generate_style").value == "folk"
    tracks = app.session_state["generated_pieces"]
    assert len(tracks) == 1 and tracks[0].style == "folk" and tracks[0].seed == 7
    assert [c.key for c in app.get("plotly_chart")] == ["piano_roll_0"]


def test_compare_a_chorale_opens_compare_with_a_generated_piece(app) -> None:
    app.run()

    next(b for b in app.button if b.label == "Compare a new chorale with Bach").click().run()

    assert not app.exception
    assert app.title[0].value == "Compare"
    assert app.session_state["generated_pieces"][0].style == "classical"
    assert len(app.metric) == 4
    original = app.selectbox(key="compare_Original_piece").value
    assert original.style == "classical"  # compared with real music of its own style


def test_a_failed_generation_on_home_is_a_message(app, monkeypatch) -> None:
    from engine.errors import ModelUnavailable
    from ui import models

    def unavailable(*args, **kwargs):
        raise ModelUnavailable("No generator: checkpoints/generator.pt is missing.")

    monkeypatch.setattr(models, "generate_music", unavailable)
    app.run()

    next(b for b in app.button if b.label == "Compare a new chorale with Bach").click().run()

    assert not app.exception
    assert app.title[0].value == "Music Studio"
    assert "generator.pt is missing" in app.error[0].value


def test_tag_the_moods_of_an_example_opens_mood(app, studio_home, stub_moods) -> None:
    calls = stub_moods()
    app.run()

    next(b for b in app.main.button if b.label == "Tag the moods of an example").click().run()

    assert not app.exception
    assert app.title[0].value == "Mood"
    assert calls and calls[0][1] == app.session_state["current_clip"].name


def test_find_tracks_like_an_example_opens_similar(app, stub_classifier, stub_moods) -> None:
    app.run()

    next(b for b in app.main.button if b.label == "Find tracks like an example").click().run()

    assert not app.exception
    assert app.title[0].value == "Similar"
    assert app.session_state["current_clip"].source == "example"
    assert "no tracks to search" in app.info[0].value  # the empty studio folder of the test


def test_open_the_library(app) -> None:
    app.run()

    next(b for b in app.main.button if b.label == "Open the library").click().run()

    assert not app.exception
    assert app.title[0].value == "Library"


def test_open_score_search(app) -> None:
    app.run()

    next(b for b in app.main.button if b.label == "Open score search").click().run()

    assert not app.exception
    assert app.title[0].value == "Score search"


def test_read_an_example_page(app, monkeypatch) -> None:
    from ui import score

    calls = []

    def read_file(data: bytes, name: str):
        calls.append(name)
        raise score.EngineError("stubbed: the page logic is tested in test_read.py")

    monkeypatch.setattr(score, "read_file", read_file)
    app.run()
    next(b for b in app.main.button if b.label == "Read an example page").click().run()

    assert not app.exception
    assert app.title[0].value == "Read"
    assert calls == ["bach-chorale-bwv342.png"]
