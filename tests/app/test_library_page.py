"""Library page: empty, browse and find by title, delete with confirmation, add uploads, and
build the demo library, with the engine's model calls stubbed."""

from __future__ import annotations

import os
import signal

import pytest

from engine import similar
from engine.library import Library
from engine.score.assemble import musicxml_bytes
from tests.app.conftest import fake_description
from tests.app.test_similar_page import fill_library
from tests.conftest import encode_audio
from tests.helpers import needs_fluidsynth, wait_for_exit
from tests.score_pages import melody_score

PAGE = "app_pages/library.py"


@pytest.fixture
def library_page(app):
    app.run()
    app.switch_page(PAGE).run()
    return app


def titles(home) -> list[str]:
    with Library.open(home) as library:
        return [t.title for t in library.tracks()]


def test_an_empty_library(library_page) -> None:
    assert not library_page.exception
    assert library_page.title[0].value == "Library"
    assert library_page.button(key="library_demo").label == "Build the demo library"
    assert "no tracks yet" in library_page.info[0].value


def test_browse_find_by_title_and_play(library_page, studio_home) -> None:
    fill_library(studio_home)
    library_page.run()

    assert not library_page.exception and not library_page.error
    assert len(library_page.dataframe[0].value) == 3
    assert library_page.selectbox(key="library_track").options == [
        "Track jazz",
        "Track folk",
        "Track classical",
    ]
    assert len(library_page.main.get("audio")) == 1

    library_page.text_input(key="library_title").input("FOLK").run()
    assert library_page.dataframe[0].value["title"].tolist() == ["Track folk"]

    library_page.text_input(key="library_title").input("nothing like it").run()
    assert "No track has that title" in library_page.info[0].value


def test_delete_asks_first(library_page, studio_home) -> None:
    fill_library(studio_home)
    library_page.run()

    library_page.button(key="delete").click().run()
    assert "Delete “Track jazz”" in library_page.warning[0].value
    library_page.button(key="cancel_delete").click().run()
    assert titles(studio_home) == ["Track jazz", "Track folk", "Track classical"]

    library_page.button(key="delete").click().run()
    library_page.button(key="confirm_delete").click().run()
    assert not library_page.exception
    assert titles(studio_home) == ["Track folk", "Track classical"]
    assert library_page.selectbox(key="library_track").options == ["Track folk", "Track classical"]


def test_add_uploads(library_page, studio_home, monkeypatch, make_tone) -> None:
    from ui import models

    monkeypatch.setattr(models, "describe_bytes", lambda data, name: fake_description(3))
    good = encode_audio(make_tone(seconds=1.0), 22_050, "wav")
    library_page.file_uploader(key="library_uploads").set_value(
        [("my_song.wav", good, "audio/wav"), ("broken.wav", b"RIFF nonsense", "audio/wav")]
    ).run()
    library_page.button(key="add_uploads").click().run()

    assert not library_page.exception
    assert "broken.wav" in library_page.error[0].value  # the bad file is named, the other kept
    assert library_page.success[0].value == "1 added."
    assert titles(studio_home) == ["my song"]
    # The library is no longer empty in the same run: no offer of the demo as if it were.
    assert not any("The library is empty" in m.value for m in library_page.markdown)


@needs_fluidsynth
def test_add_a_score_keeps_it_with_its_track(library_page, studio_home, monkeypatch) -> None:
    from ui import models

    monkeypatch.setattr(models, "describe_for_library", lambda clip: fake_description(3))
    score = musicxml_bytes(melody_score(parts=2, bars=4))
    library_page.file_uploader(key="library_uploads").set_value(
        [("my_score.musicxml", score, "application/xml"),
         ("notes.musicxml", b"<html>not music</html>", "application/xml")]
    ).run()
    library_page.button(key="add_uploads").click().run()

    assert not library_page.exception
    assert "notes.musicxml is not a MusicXML score" in library_page.error[0].value
    assert library_page.success[0].value == "1 added."
    with Library.open(studio_home) as library:
        (track,) = library.tracks()
        assert track.title == "my score" and library.score(track.track_id) is not None


def test_build_the_demo_library(library_page, studio_home, monkeypatch) -> None:
    from engine import demo
    from ui import models

    bundled = demo.demo_pieces()[:2]  # bundled examples: audio, no rendering
    monkeypatch.setattr(demo, "demo_pieces", lambda: bundled)
    monkeypatch.setattr(demo, "CORPUS", ())
    monkeypatch.setattr(models, "describe_for_library", lambda clip: fake_description(4))

    library_page.button(key="library_demo").click().run()

    assert not library_page.exception and not library_page.error
    assert sorted(titles(studio_home)) == sorted(p.title for p in bundled)
    assert not [b for b in library_page.button if b.key == "library_demo"]


@pytest.fixture
def sleeper_process():
    """A live child process standing in for the background demo build."""
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


@pytest.fixture
def build_started(monkeypatch) -> list:
    """The library folders the demo build command is asked for (it stands in a `sleep 60`)."""
    from engine import demo

    started = []

    def command(home):
        started.append(home)
        return ["sleep", "60"]

    monkeypatch.setattr(demo, "build_command", command)
    return started


def test_the_first_run_starts_the_demo_build(app, studio_home, monkeypatch, build_started):
    from engine import demo

    monkeypatch.setenv(demo.FIRST_RUN_ENV, "1")
    app.run()
    app.switch_page(PAGE).run()

    build = demo.demo_build(studio_home)
    assert build is not None
    try:
        assert not app.exception and not app.error
        assert build_started == [studio_home]
        assert build.running()
    finally:
        os.kill(build.pid, signal.SIGKILL)
        wait_for_exit(build.pid)


def test_the_background_build_shows_its_progress(library_page, studio_home, sleeper_process):
    import json

    from engine import demo

    fill_library(studio_home)
    record = {"pid": sleeper_process.pid, "started": 0.0, "pieces": 300}
    (studio_home / demo.BUILD_RECORD).write_text(json.dumps(record))
    library_page.run()

    assert not library_page.exception and not library_page.error
    progress = library_page.get("progress")
    assert progress and "3 of about 300 pieces" in progress[0].proto.text
    assert not [b for b in library_page.button if b.key == "library_demo"]
    assert len(library_page.dataframe[0].value) == 3  # what is there is already listed

    sleeper_process.kill()
    sleeper_process.wait()
    library_page.run()
    assert not library_page.get("progress")


def test_a_stopped_build_offers_to_continue(library_page, studio_home, build_started):
    import json

    from engine import demo

    fill_library(studio_home)
    dead = {"pid": 2**22 + 12345, "started": 0.0, "pieces": 300}  # no such process
    (studio_home / demo.BUILD_RECORD).write_text(json.dumps(dead))
    (studio_home / demo.BUILD_LOG).write_text("demo: 10%\n")
    library_page.run()
    assert not library_page.exception and not library_page.error
    library_page.button(key="library_demo").click().run()

    assert not library_page.exception and not library_page.error
    assert build_started == [studio_home]
    build = demo.demo_build(studio_home)
    try:
        assert build.running() and library_page.get("progress")
    finally:
        os.kill(build.pid, signal.SIGKILL)
        wait_for_exit(build.pid)


def test_tracks_of_earlier_models_are_analysed_again(library_page, studio_home) -> None:
    ids = fill_library(studio_home)  # stored without the models' name: earlier models
    with Library.open(studio_home) as library:
        folk = library.track(ids[1])
        library.audio_path(folk.sha256).unlink()
    library_page.run()

    def offer() -> str:
        return " ".join(m.value for m in library_page.markdown if "earlier version" in m.value)

    assert "3 of the library's 3 tracks were analysed by an earlier version" in offer()
    library_page.button(key="reanalyse").click().run()  # the shipped models, for real

    assert not library_page.exception and not library_page.error
    assert library_page.success[0].value == "2 tracks analysed again."
    (warning,) = [w.value for w in library_page.warning]
    assert warning.startswith("“Track folk” keeps its earlier analysis: its audio is missing")
    assert "1 of the library's 3 tracks" in offer()
    with Library.open(studio_home) as library:
        kept = library.track(ids[1])
        assert kept.analysed_by == "" and kept.genres == folk.genres
        jazz = library.track(ids[0])
        assert jazz.analysed_by == similar.analysis_identity()
        assert max(jazz.genres.values()) != 0.9  # the shipped model's, not fake_description's
    library_page.run()
    assert not library_page.success  # said once
