"""Mood page: crowd moods, a listener's personalised moods, answers, and the demo set-up."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ModelUnavailable
from engine.library import Library
from engine.mood import MOOD_TAGS, TagReliability
from tests.app.conftest import fake_description, fake_moods

PAGE = "app_pages/mood.py"
TRACKS = 10  # in the test community


def make_community(home: Path) -> None:
    """Ten tracks; ann follows bob, who hears sadness in all; cat follows nobody.

    Ten: a calibration needs that much evidence to lift a tag the crowd gives 0.2 past 0.5.
    """
    with Library.open(home) as library:
        for n in range(TRACKS):
            library.add_track(
                title=f"Track {n}",
                source="test",
                sha256=f"{n:064x}",
                duration=30.0,
                moods={t: 0.2 for t in MOOD_TAGS},
            )
        folder = home / "csv"
        folder.mkdir()
        (folder / "listeners.csv").write_text(
            "listener_id,name,group,simulated\nann,Ann,north,0\nbob,Bob,north,1\ncat,Cat,,0\n"
        )
        (folder / "follows.csv").write_text("follower,followee\nann,bob\n")
        (folder / "playlists.csv").write_text("playlist_id,listener_id,title\np1,bob,Blue\n")
        (folder / "playlist_tracks.csv").write_text(
            "playlist_id,track_id\n" + "".join(f"p1,{n + 1}\n" for n in range(TRACKS))
        )
        (folder / "playlist_tags.csv").write_text("playlist_id,tag\np1,sadness\n")
        library.import_community(folder, tags=MOOD_TAGS)


RELIABILITY = (  # as the checkpoint would store it: a strong, a fair and a chance-level tag
    TagReliability("moving", 0.5, 12, 100),
    TagReliability("sadness", 0.7, 20, 100),
    TagReliability("joy", 0.88, 12, 100),
)


@pytest.fixture
def stub_reliability(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped model's per-tag figures, without loading it."""
    from ui import models

    monkeypatch.setattr(models, "mood_reliability", lambda: RELIABILITY)


@pytest.fixture
def mood_page(app, studio_home, stub_moods, stub_reliability, wav_bytes):
    """The Mood page with a community, a clip uploaded, moods stubbed."""
    make_community(studio_home)
    calls = stub_moods(fake_moods(top="joy"))
    app.run()
    app.switch_page(PAGE).run()
    app.file_uploader[0].set_value(("song.wav", wav_bytes, "audio/wav")).run()
    app.calls = calls
    return app


def charts(app) -> list[str]:
    return [element.key for element in app.get("plotly_chart")]


def table_with(app, column: str):
    """The one table on the page that has `column`."""
    (table,) = [d.value for d in app.dataframe if column in d.value.columns]
    return table


def pick(app, listener_id: str | None) -> None:
    app.sidebar.selectbox(key="listener_picker").set_value(listener_id).run()


def test_without_a_clip_the_page_asks_for_one(app, studio_home, stub_moods) -> None:
    calls = stub_moods()
    app.run()
    app.switch_page(PAGE).run()

    assert not app.exception
    assert app.title[0].value == "Mood"
    assert "to see its moods" in app.info[0].value
    assert calls == []
    assert app.button(key="demo")  # no community yet: the demo can be set up


def test_the_crowd_view_without_a_listener(mood_page) -> None:
    assert not mood_page.exception and not mood_page.error
    assert mood_page.calls[0][1] == "song.wav"
    assert mood_page.metric[0].value.startswith("joy")
    assert charts(mood_page) == ["valence_arousal", "mood_bars"]
    assert any("The crowd's view" in c.value for c in mood_page.caption)
    assert not [b for b in mood_page.button if b.key and b.key.startswith("answer_")]


def test_each_tag_shows_how_well_the_model_hears_it(mood_page) -> None:
    table = table_with(mood_page, "ROC-AUC")
    assert table["tag"].tolist() == ["joy", "sadness", "moving"]  # best heard first
    assert table["reading"].tolist() == ["strong", "fair", "close to a guess"]
    assert table["held-out clips with it"].tolist() == [12, 20, 12]
    assert mood_page.expander[0].label == "How well the model hears each tag"
    assert "100 held-out real clips" in " ".join(c.value for c in mood_page.caption)
    assert "barely hears" not in " ".join(c.value for c in mood_page.caption)  # joy is heard


def test_a_chance_level_top_tag_is_flagged(
    app, studio_home, stub_moods, stub_reliability, wav_bytes
) -> None:
    stub_moods(fake_moods(top="moving"))
    app.run()
    app.switch_page(PAGE).run()
    app.file_uploader[0].set_value(("song.wav", wav_bytes, "audio/wav")).run()

    assert not app.exception
    note = next(c.value for c in app.caption if "barely hears" in c.value)
    assert "**moving** (ROC-AUC 0.50)" in note and "sadness" not in note


def test_without_the_model_s_figures_the_moods_still_show(
    app, studio_home, stub_moods, wav_bytes, monkeypatch
) -> None:
    from ui import models

    def unavailable():
        raise ModelUnavailable("checkpoints/genre.pt is missing")

    stub_moods()
    monkeypatch.setattr(models, "genre_classifier", unavailable)
    app.run()
    app.switch_page(PAGE).run()
    app.file_uploader[0].set_value(("song.wav", wav_bytes, "audio/wav")).run()

    assert not app.exception and not app.error
    assert app.metric[0].value.startswith("joy")
    assert not app.expander  # no figures to show, and no error for it


def test_a_listener_hears_what_those_they_follow_hear(mood_page) -> None:
    pick(mood_page, "ann")

    assert not mood_page.exception
    assert mood_page.metric[0].label == "Moods for Ann"
    assert "sadness" in mood_page.metric[0].value  # bob tagged sadness; ann follows bob
    assert charts(mood_page) == ["valence_arousal", "mood_bars", "neighbourhood"]
    table = table_with(mood_page, "vote weight")
    assert table["listener"].tolist() == ["Bob · north · simulated"]
    assert table["vote weight"].tolist() == [1.0]


def test_answers_are_stored_and_shown_at_once(mood_page, studio_home) -> None:
    pick(mood_page, "cat")
    assert "follows nobody" in " ".join(c.value for c in mood_page.caption)

    mood_page.button(key="answer_joy_False").click().run()

    assert not mood_page.exception
    assert "joy" not in mood_page.metric[0].value  # the answer about this clip wins
    with Library.open(studio_home) as library:
        answers = library.feedback("cat")
    assert [(a.tag, a.accepted) for a in answers] == [("joy", False)]
    assert mood_page.button(key="answer_joy_False").proto.type == "primary"


def test_a_new_listener_can_be_created(mood_page) -> None:
    mood_page.sidebar.text_input(key="new_listener_name").input("Dee Jay")
    mood_page.sidebar.multiselect(key="new_listener_follows").select("bob")
    mood_page.sidebar.button(key="new_listener_create").click().run()

    assert not mood_page.exception
    assert mood_page.sidebar.selectbox(key="listener_picker").value == "dee-jay"
    assert mood_page.metric[0].label == "Moods for Dee Jay"


def test_a_nameless_listener_is_refused(mood_page) -> None:
    mood_page.sidebar.button(key="new_listener_create").click().run()

    assert not mood_page.exception
    assert "needs a name" in mood_page.sidebar.error[0].value


def test_a_missing_mood_model_is_a_message(app, studio_home, stub_moods, wav_bytes) -> None:
    stub_moods(raises=ModelUnavailable("The studio's model has no mood heads."))
    app.run()
    app.switch_page(PAGE).run()

    app.file_uploader[0].set_value(("song.wav", wav_bytes, "audio/wav")).run()

    assert not app.exception
    assert "no mood heads" in app.error[0].value


def test_setting_up_the_demo_community(app, studio_home, stub_moods, monkeypatch) -> None:
    from engine import demo
    from ui import models

    stub_moods()
    pieces = demo.demo_pieces()[:3]  # the bundled examples: no rendering needed
    monkeypatch.setattr(demo, "demo_pieces", lambda: pieces)
    description = fake_description()
    monkeypatch.setattr(
        models,
        "describe_for_library",
        lambda clip: replace(description, moods={t: 0.3 for t in MOOD_TAGS}),
    )
    app.run()
    app.switch_page(PAGE).run()

    app.button(key="demo").click().run()

    assert not app.exception and not app.error
    assert not [b for b in app.button if b.key == "demo"]
    with Library.open(studio_home) as library:
        size = library.community_size()
    assert size["tracks"] == 3 and size["listeners"] == 200
    labels = app.sidebar.selectbox(key="listener_picker").options
    assert len(labels) == 200 and all(label.endswith("simulated") for label in labels)


def test_the_calibrations_are_learnt_again_when_the_community_changes(studio_home) -> None:
    from ui import models

    make_community(studio_home)
    first = models.calibrations()
    with Library.open(studio_home) as library:
        dee = library.add_listener("Dee", follows=["bob"])
        second = models.calibrations()
        library.store_analysis(  # a track analysed again by updated models: new crowd moods
            1, moods={t: 0.9 for t in MOOD_TAGS}, genres={}, segments=fake_description().segments,
            analysed_by="updated models",
        )  # fmt: skip
    third = models.calibrations()

    assert set(second) == set(first) | {dee.listener_id}
    assert not np.allclose(third["ann"].shift, second["ann"].shift)
    assert models.calibrations() is third  # the community as it was: not fitted again
