"""Tracks that keep their score: score files read, engraved, timed and played; the library
stores the score beside the track; `library add` takes MusicXML and MXL."""

from __future__ import annotations

import io
import sqlite3
import zipfile
from pathlib import Path

import pretty_midi
import pytest

from engine.errors import EngineError, InvalidScoreFile
from engine.library import SCHEMA_VERSION, Library
from engine.score.assemble import musicxml_bytes
from engine.scored import engrave_track, is_score_file, musicxml_of
from tests.helpers import needs_fluidsynth, run_engine
from tests.score_pages import melody_score
from tests.test_similar import model_env  # noqa: F401 - the tiny models' fixture

BAR_SECONDS = 2.0  # a 4/4 bar at verovio's 120 quarters a minute


def _mxl(xml: bytes, name: str = "score.xml", extra: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("META-INF/container.xml", "<container/>")
        archive.writestr(name, xml)
        if extra:
            archive.writestr("padding.bin", extra)
    return buffer.getvalue()


def test_score_files_are_told_by_name() -> None:
    assert is_score_file("Song.MXL") and is_score_file("a.musicxml") and is_score_file("b.xml")
    assert not is_score_file("song.mid") and not is_score_file("song.wav")


def test_musicxml_is_read_plain_or_from_an_mxl_archive() -> None:
    xml = musicxml_bytes(melody_score(bars=2))
    assert musicxml_of(xml, "a.musicxml") == xml
    assert musicxml_of(_mxl(xml), "a.mxl") == xml


@pytest.mark.parametrize(("data", "message"), [
    (b"", "is empty"),
    (b"<html><body>not music</body></html>", "not a MusicXML score"),
    (b"PK\x03\x04 broken", "broken MXL archive"),
    (_mxl(b"<score-partwise/>", name="notes.txt"), "without a MusicXML score"),
    (_mxl(b"<score-partwise/>", extra=bytes(60 * 2**20)), "unpacks to more than"),
])
def test_files_that_are_not_scores_are_refused_clearly(data: bytes, message: str) -> None:
    with pytest.raises(InvalidScoreFile, match=message):
        musicxml_of(data, "upload.mxl")


@needs_fluidsynth
def test_a_score_is_engraved_timed_and_played() -> None:
    xml = musicxml_bytes(melody_score(parts=2, bars=6))
    scored = engrave_track(xml, "melody.musicxml")
    bars = [bar for system in scored.timed.systems for bar in system.bars]
    assert [bar.start for bar in bars] == pytest.approx([n * BAR_SECONDS for n in range(6)],
                                                        abs=0.01)
    assert scored.clip.duration == pytest.approx(6 * BAR_SECONDS + 1.0, abs=0.3)
    assert len(scored.page_images()) == len(scored.timed.pages) >= 1
    again = engrave_track(_mxl(xml), "melody.mxl")
    assert again.clip.sha256 == scored.clip.sha256  # keyed by the score, not the render


def test_a_score_with_nothing_to_engrave_is_refused() -> None:
    empty = b'<?xml version="1.0"?><score-partwise version="4.0"><part-list/></score-partwise>'
    with pytest.raises(InvalidScoreFile, match="empty.musicxml"):
        engrave_track(empty, "empty.musicxml")


@needs_fluidsynth
def test_the_library_keeps_a_track_s_score_until_the_track_goes(tmp_path: Path) -> None:
    scored = engrave_track(musicxml_bytes(melody_score(bars=4)), "melody.musicxml")
    with Library.open(tmp_path / "studio") as library:
        track_id, _ = library.add_track(title="Melody", source="test",
                                        sha256=scored.clip.sha256, duration=9.0)
        assert library.score(track_id) is None
        library.store_score(track_id, scored.musicxml, scored.timed.systems,
                            scored.page_images())
        stored = library.score(track_id)
        assert stored is not None and stored.musicxml == scored.musicxml
        assert stored.systems == scored.timed.systems
        assert all(page.is_file() for page in stored.pages)
        assert library.scored_track_ids() == [track_id]
        with pytest.raises(EngineError, match="no track 99"):
            library.store_score(99, scored.musicxml, [], [])
        library.delete_track(track_id)
        assert library.score(track_id) is None
        assert not any(page.exists() for page in stored.pages)


def test_a_schema_2_library_opens_and_can_keep_scores(tmp_path: Path) -> None:
    home = tmp_path / "studio"
    with Library.open(home) as library:
        library.add_track(title="Old", source="x", sha256="ab", duration=3.0)
    with sqlite3.connect(home / "library.sqlite") as db:  # as schema 2 left it
        db.execute("DROP TABLE scores")
        db.execute("PRAGMA user_version = 2")
    db.close()
    with Library.open(home) as library:
        assert [t.title for t in library.tracks()] == ["Old"]
        assert library.connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert library.scored_track_ids() == []


@needs_fluidsynth
def test_cli_adds_scores_and_keeps_them(tmp_path: Path, model_env: dict[str, str]) -> None:  # noqa: F811
    good = tmp_path / "melody.mxl"
    good.write_bytes(_mxl(musicxml_bytes(melody_score(parts=2, bars=4))))
    bad = tmp_path / "notes.musicxml"
    bad.write_text("<html>not a score</html>")
    home = str(tmp_path / "studio")

    added = run_engine("library", "add", str(bad), str(good), "--library", home, env=model_env)

    assert added.returncode == 1 and "Traceback" not in added.stderr
    assert f"{bad}: {bad.name} is not a MusicXML score" in added.stderr
    assert added.stdout.startswith("added 1: melody")
    with Library.open(home) as library:
        stored = library.score(1)
        assert stored is not None and len(stored.systems) >= 1
    again = run_engine("library", "add", str(good), "--library", home, env=model_env)
    assert again.returncode == 0 and "already in the library (track 1" in again.stderr


@needs_fluidsynth
def test_a_midi_file_becomes_a_score_known_by_the_file(tmp_path: Path,
                                                      model_env: dict[str, str]) -> None:  # noqa: F811
    import hashlib

    from engine.scored import MAX_SCORED_MIDI_NOTES, scored_track
    from tests.helpers import arpeggio_piece, midi_bytes

    data = midi_bytes(arpeggio_piece())
    scored = scored_track(data, "arpeggio.mid")
    assert scored is not None and scored.clip.sha256 == hashlib.sha256(data).hexdigest()
    assert b"<score-partwise" in scored.musicxml and scored.timed.systems
    assert scored_track(b"RIFF....WAVE", "take.wav") is None  # audio: no score
    silent = pretty_midi.PrettyMIDI()
    silent.instruments.append(pretty_midi.Instrument(0))
    assert scored_track(midi_bytes(silent), "empty.mid") is None  # sound only, as before
    crowded = arpeggio_piece(tuple(40 + n % 40 for n in range(MAX_SCORED_MIDI_NOTES + 1)))
    assert scored_track(midi_bytes(crowded), "crowded.mid") is None

    path = tmp_path / "arpeggio.mid"
    path.write_bytes(data)
    home = str(tmp_path / "studio")
    added = run_engine("library", "add", str(path), "--library", home, env=model_env)
    assert added.returncode == 0, added.stderr
    with Library.open(home) as library:
        assert library.scored_track_ids() == [1]
    again = run_engine("library", "add", str(path), "--library", home, env=model_env)
    assert "already in the library (track 1" in again.stderr
