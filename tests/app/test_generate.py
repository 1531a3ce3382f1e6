"""Generate page: controls, a real generation, variations, errors, and hand-offs."""

from __future__ import annotations

import pytest

from engine.errors import ModelUnavailable
from engine.generate import STYLES

PAGE = "app_pages/generate.py"


@pytest.fixture
def generate_page(app):
    """The app, switched to the Generate page and run once."""
    app.run()
    app.switch_page(PAGE).run()
    return app


def charts(app) -> list[str]:
    return [element.key for element in app.get("plotly_chart")]


def test_before_generating_the_page_offers_the_controls(generate_page) -> None:
    assert not generate_page.exception
    assert generate_page.title[0].value == "Generate"
    assert "press Generate" in generate_page.info[0].value
    assert generate_page.selectbox(key="generate_style").options == [s.capitalize() for s in STYLES]
    for key in ("generate_seconds", "generate_temperature", "generate_top_p",
                "generate_style_strength", "generate_variations"):  # fmt: skip
        assert generate_page.slider(key=key) is not None
    assert generate_page.number_input(key="generate_seed").value == 0
    assert not charts(generate_page)


def test_generate_plays_draws_and_offers_downloads(generate_page) -> None:
    generate_page.slider(key="generate_seconds").set_value(5)
    generate_page.number_input(key="generate_seed").set_value(11)

    generate_page.button(key="generate_button").click().run()

    assert not generate_page.exception and not generate_page.error
    assert charts(generate_page) == ["piano_roll_0"]
    assert generate_page.get("audio")
    assert [b.label for b in generate_page.get("download_button")] == ["MIDI", "Audio (WAV)"]
    first = generate_page.session_state["generated_pieces"][0]
    assert first.seed == 11 and first.midi.startswith(b"MThd") and len(first.piano_roll) > 0

    generate_page.button(key="generate_button").click().run()  # same seed and settings
    again = generate_page.session_state["generated_pieces"][0]
    assert again.midi == first.midi


def test_variations_get_a_tab_each(generate_page) -> None:
    generate_page.slider(key="generate_seconds").set_value(5)
    generate_page.slider(key="generate_variations").set_value(2)
    generate_page.selectbox(key="generate_style").set_value("rock")

    generate_page.button(key="generate_button").click().run()

    assert not generate_page.exception
    assert [t.label for t in generate_page.tabs] == ["Rock, seed 0", "Rock, seed 1"]
    assert charts(generate_page) == ["piano_roll_0", "piano_roll_1"]


def test_new_seed_changes_the_seed(generate_page) -> None:
    next(b for b in generate_page.button if b.label == "New seed").click().run()
    first = generate_page.number_input(key="generate_seed").value
    next(b for b in generate_page.button if b.label == "New seed").click().run()
    assert generate_page.number_input(key="generate_seed").value != first


def test_continue_a_real_piece(generate_page) -> None:
    generate_page.slider(key="generate_seconds").set_value(5)
    generate_page.radio(key="generate_start").set_value("Continue a real piece").run()
    assert generate_page.selectbox(key="generate_prompt_piece").options

    generate_page.button(key="generate_button").click().run()

    assert not generate_page.exception and not generate_page.error
    assert generate_page.session_state["generated_pieces"][0].prompt_seconds > 0
    assert any("are the prompt" in c.value for c in generate_page.caption)


def test_continue_my_midi_file_asks_for_one(generate_page) -> None:
    generate_page.radio(key="generate_start").set_value("Continue my MIDI file").run()

    generate_page.button(key="generate_button").click().run()

    assert not generate_page.exception
    assert "Upload a MIDI file" in generate_page.warning[0].value
    assert "generated_pieces" not in generate_page.session_state


def test_a_missing_model_is_a_message(generate_page, monkeypatch) -> None:
    from ui import models

    def unavailable(*args, **kwargs):
        raise ModelUnavailable("No generator: checkpoints/generator.pt is missing.")

    monkeypatch.setattr(models, "generate_music", unavailable)

    generate_page.button(key="generate_button").click().run()

    assert not generate_page.exception
    assert "generator.pt is missing" in generate_page.error[0].value
    assert "press Generate" in generate_page.info[0].value  # the page still works


def test_without_audio_the_midi_is_still_offered(generate_page) -> None:
    from tests.app.conftest import generated_track

    generate_page.session_state["generated_pieces"] = (generated_track(audio=False),)
    generate_page.run()

    assert not generate_page.exception
    assert "FluidSynth is missing" in generate_page.warning[0].value
    assert [b.label for b in generate_page.get("download_button")] == ["MIDI"]
    assert charts(generate_page) == ["piano_roll_0"]


def test_a_piece_drawn_again_says_so(generate_page) -> None:
    from dataclasses import replace

    from tests.app.conftest import generated_track

    first, redrawn = generated_track(), replace(generated_track(seed=4), draws=2)
    generate_page.session_state["generated_pieces"] = (first, redrawn)
    generate_page.run()

    assert not generate_page.exception
    captions = [c.value for c in generate_page.caption if "notes" in c.value]
    assert len(captions) == 2 and "replayed a training piece" not in captions[0]
    assert "draw 2: the earlier ones replayed a training piece" in captions[1]


def test_compare_with_real_music_opens_compare(generate_page) -> None:
    from tests.app.conftest import generated_track

    generate_page.session_state["generated_pieces"] = (generated_track("pop"),)
    generate_page.run()

    generate_page.button(key="cmp_0").click().run()

    assert not generate_page.exception
    assert generate_page.title[0].value == "Compare"


def test_classify_it_makes_the_piece_the_current_clip(generate_page, stub_classifier) -> None:
    from tests.app.conftest import generated_track

    calls = stub_classifier()
    generate_page.session_state["generated_pieces"] = (generated_track("pop", seed=5),)
    generate_page.run()

    generate_page.button(key="classify_0").click().run()

    assert not generate_page.exception
    assert generate_page.title[0].value == "Classify"
    clip = generate_page.session_state["current_clip"]
    assert clip.name == "pop-seed5.wav" and clip.source == "generated"
    assert calls and calls[0][1] == "pop-seed5.wav"


def test_add_to_library_stores_the_piece_once(generate_page, studio_home, monkeypatch) -> None:
    from engine.library import Library
    from tests.app.conftest import fake_description, generated_track
    from ui import models

    monkeypatch.setattr(models, "describe_bytes", lambda data, name: fake_description(2))
    generate_page.session_state["generated_pieces"] = (generated_track("folk", seed=4),)
    generate_page.run()

    generate_page.button(key="library_0").click().run()
    generate_page.button(key="library_0").click().run()

    assert not generate_page.exception and not generate_page.error
    assert "Already in the library" in generate_page.toast[0].value
    with Library.open(studio_home) as library:
        (track,) = library.tracks()
    assert track.title == "folk, seed 4" and track.source == "generated"
