"""The catalog database: tracks, listeners, community CSV import/export, feedback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.audio import SAMPLE_RATE, from_array
from engine.errors import EngineError
from engine.library import SCHEMA_VERSION, InvalidImport, Library

TAGS = ("joy", "sadness", "quiet")


@pytest.fixture
def library(tmp_path: Path) -> Library:
    with Library.open(tmp_path / "studio") as lib:
        for n in range(3):
            lib.add_track(
                title=f"Track {n}",
                source="test",
                sha256=f"{n:064x}",
                duration=30.0,
                moods={"joy": 0.1 * n},
            )
        yield lib


def write(folder: Path, **files: str) -> Path:
    """Write CSV files given as name=text (name without .csv)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    return folder


GOOD = {
    "listeners": "listener_id,name,group\nann,Ann,north\nbob,Bob,north\ncat,Cat,\n",
    "follows": "follower,followee\nann,bob\nbob,cat\n",
    "playlists": "playlist_id,listener_id,title\np1,bob,Rainy\np2,cat,Sunny\n",
    "playlist_tracks": "playlist_id,track_id\np1,1\np1,2\np2,3\n",
    "playlist_tags": "playlist_id,tag\np1,Sadness\np1,gym\np2,joy\n",
}


def test_a_track_is_never_added_twice(library: Library) -> None:
    first = library.add_track(title="Again", source="x", sha256=f"{9:064x}", duration=1.0)
    again = library.add_track(title="Other name", source="y", sha256=f"{9:064x}", duration=1.0)
    assert first[1] and not again[1] and first[0] == again[0]
    assert library.community_size()["tracks"] == 4


def test_import_a_community(library: Library, tmp_path: Path) -> None:
    counts = library.import_community(write(tmp_path / "csv", **GOOD), tags=TAGS)

    assert counts["listeners.csv"] == 3 and counts["follows.csv"] == 2
    assert counts["playlist_tags.csv"] == 2 and counts["dropped_tags"] == 1  # "gym"
    assert library.follows() == [("ann", "bob"), ("bob", "cat")]
    assert library.track_tags() == {
        1: {"bob": {"sadness"}},
        2: {"bob": {"sadness"}},
        3: {"cat": {"joy"}},
    }
    assert [x.listener_id for x in library.listeners()] == ["ann", "bob", "cat"]
    assert library.listener("cat").group == ""


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"follows": "follower,followee\nann,bob\nann,zed\n"}, "follows.csv, line 3"),
        ({"follows": "follower,followee\nann,ann\n"}, "cannot follow themselves"),
        ({"follows": "follower\nann\n"}, "follows.csv, line 1: the header lacks followee"),
        ({"playlists": "playlist_id,listener_id,title\np9,ann\n"}, "playlists.csv, line 2"),
        ({"playlist_tracks": "playlist_id,track_id\np1,1\np1,two\n"}, "whole number"),
        ({"playlist_tracks": "playlist_id,track_id\np1,99\n"}, "track_id 99"),
        (
            {"listeners": "listener_id,name,group\nnew,New,x\nann,,x\n"},
            "listeners.csv, line 3: name",
        ),
        (
            {"listeners": "listener_id,name,group,simulated\nnew,N,x,0\nzed,Zed,x,maybe\n"},
            "simulated",
        ),
    ],
)
def test_a_malformed_import_names_file_and_line_and_stores_nothing(
    library: Library, tmp_path: Path, files: dict[str, str], message: str
) -> None:
    library.import_community(write(tmp_path / "first", **GOOD), tags=TAGS)
    before = library.community_size()
    # Good rows first, so a partial import would show; then the bad file.
    good_first = {
        "listeners": "listener_id,name,group\nnew,New,south\n",
        "playlists": "playlist_id,listener_id,title\np1,bob,Rainy\n",
    }
    folder = write(tmp_path / "bad", **{**good_first, **files})

    with pytest.raises(InvalidImport, match=message):
        library.import_community(folder, tags=TAGS)

    assert library.community_size() == before
    assert library.listener("new") is None
    assert library.follows() == [("ann", "bob"), ("bob", "cat")]


def test_not_utf8_and_empty_folders_are_clear_errors(library: Library, tmp_path: Path) -> None:
    folder = tmp_path / "latin1"
    folder.mkdir()
    (folder / "listeners.csv").write_bytes(
        "listener_id,name,group\nj,Jos\xe9,x\n".encode("latin-1")
    )
    with pytest.raises(InvalidImport, match="listeners.csv: not UTF-8"):
        library.import_community(folder, tags=TAGS)
    with pytest.raises(InvalidImport, match="none of the community files"):
        library.import_community(tmp_path / "nothing-here", tags=TAGS)


def test_export_then_import_round_trips(library: Library, tmp_path: Path) -> None:
    library.import_community(write(tmp_path / "csv", **GOOD), tags=TAGS)
    exported = library.export_community(tmp_path / "out")
    assert [p.name for p in exported] == [
        "listeners.csv",
        "follows.csv",
        "playlists.csv",
        "playlist_tracks.csv",
        "playlist_tags.csv",
    ]
    with Library.open(tmp_path / "other") as other:
        for n in range(3):
            other.add_track(title=f"Track {n}", source="test", sha256=f"{n:064x}", duration=30.0)
        other.import_community(tmp_path / "out", tags=TAGS)
        assert other.follows() == library.follows()
        assert other.track_tags() == library.track_tags()
        assert other.listeners() == library.listeners()


def test_listeners_get_unique_ids_and_follow_others(library: Library) -> None:
    ann = library.add_listener("Ann Lee")
    again = library.add_listener("Ann  Lee", follows=[ann.listener_id])
    assert (ann.listener_id, again.listener_id) == ("ann-lee", "ann-lee-2")
    assert library.follows() == [("ann-lee-2", "ann-lee")]
    with pytest.raises(EngineError, match="name"):
        library.add_listener("   ")
    with pytest.raises(EngineError, match="no listener 'zed'"):
        library.add_listener("Bo", follows=["zed"])
    assert library.listener("bo") is None  # nothing of the failed creation is stored


def test_feedback_is_stored_and_replaced(library: Library) -> None:
    ann = library.add_listener("Ann")
    library.add_feedback(ann.listener_id, "clip1", "joy", accepted=True, crowd=0.4)
    library.add_feedback(ann.listener_id, "clip1", "joy", accepted=False, crowd=0.4)
    library.add_feedback(ann.listener_id, "clip2", "quiet", accepted=True, crowd=0.2)
    answers = library.feedback(ann.listener_id)
    assert [(f.clip, f.tag, f.accepted) for f in answers] == [
        ("clip1", "joy", False),
        ("clip2", "quiet", True),
    ]
    with pytest.raises(EngineError, match="no listener"):
        library.add_feedback("zed", "clip1", "joy", accepted=True, crowd=0.5)


def test_the_library_survives_reopening(tmp_path: Path) -> None:
    with Library.open(tmp_path) as lib:
        lib.add_listener("Ann")
    with Library.open(tmp_path) as lib:
        assert [x.name for x in lib.listeners()] == ["Ann"]


def test_an_unreadable_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "library.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(EngineError, match="cannot be opened"):
        Library.open(tmp_path)


def test_tracks_are_listed_found_by_title_and_deleted(library: Library) -> None:
    library.add_track(
        title="50% Off_Blues",
        source="x",
        sha256=f"{7:064x}",
        duration=2.0,
        genres={"blues": 0.9, "jazz": 0.2},
    )
    assert [t.title for t in library.tracks()][0] == "50% Off_Blues"
    assert [t.title for t in library.tracks("track 1")] == ["Track 1"]
    assert [t.title for t in library.tracks("0% o")] == ["50% Off_Blues"]  # % is literal
    assert library.tracks("f_b") and not library.tracks("fxb")  # _ is literal
    blues = library.tracks("blues")[0]
    assert blues.top_genre == "blues" and library.track(blues.track_id) == blues

    assert library.delete_track(blues.track_id)
    assert library.track(blues.track_id) is None and not library.delete_track(blues.track_id)


def test_a_schema_1_library_opens_with_its_tracks_analysed_by_unknown_models(
    tmp_path: Path,
) -> None:
    import sqlite3

    home = tmp_path / "studio"
    home.mkdir()
    with sqlite3.connect(home / "library.sqlite") as db:  # the tracks table before schema 2
        db.execute(
            "CREATE TABLE tracks (track_id INTEGER PRIMARY KEY, title TEXT NOT NULL, source TEXT "
            "NOT NULL, sha256 TEXT NOT NULL UNIQUE, duration REAL NOT NULL, moods TEXT NOT NULL "
            "DEFAULT '{}', genres TEXT NOT NULL DEFAULT '{}', added_at REAL NOT NULL)"
        )
        db.execute("INSERT INTO tracks VALUES (7, 'Old', 'x', 'ab', 3.0, '{}', '{}', 1.0)")
        db.execute("PRAGMA user_version = 1")
    db.close()

    with Library.open(home) as library:
        assert [(t.track_id, t.title, t.analysed_by) for t in library.tracks()] == [(7, "Old", "")]
        assert library.analysis_counts() == {"": 1}
        assert library.connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        library.add_track(title="New", source="y", sha256="cd", duration=1.0, analysed_by="m2")
        assert library.analysis_counts() == {"": 1, "m2": 1}
        assert [t.title for t in library.tracks_analysed_otherwise("m2")] == ["Old"]


def test_storing_an_analysis_for_no_track_stores_nothing(library: Library) -> None:
    from engine.retrieval import Segments

    segments = Segments(
        starts=np.zeros(1), embeddings=np.ones((1, 4), np.float32), codes=np.zeros((1, 8), np.uint8)
    )
    with pytest.raises(EngineError, match="no track 99"):
        library.store_analysis(99, moods={}, genres={}, segments=segments, analysed_by="m2")
    assert library.stored_segments()[0].size == 0 and library.analysis_counts() == {"": 3}
    library.store_analysis(2, moods={"joy": 1.0}, genres={}, segments=segments, analysed_by="m2")
    assert library.track(2).moods == {"joy": 1.0} and library.track(2).analysed_by == "m2"
    assert library.stored_segments()[0].tolist() == [2]


def test_stored_audio_stays_close_to_the_original(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(6 * SAMPLE_RATE) / SAMPLE_RATE
    tones = sum(np.sin(2 * np.pi * f * t) for f in rng.uniform(100, 4000, 5))
    clip = from_array(0.1 * tones + 0.02 * rng.standard_normal(len(t)), SAMPLE_RATE)
    with Library.open(tmp_path / "studio") as library:
        library.add_clip(clip, title="Tones", source="test")
        stored, rate = sf.read(library.audio_path(clip.sha256), dtype="float32")
    n = min(len(stored), len(clip.samples))
    error = clip.samples[:n] - stored[:n]
    snr = 10 * np.log10(np.sum(clip.samples[:n] ** 2) / np.sum(error**2))
    assert rate == SAMPLE_RATE and snr > 28.0  # libsndfile's default Vorbis quality: 22 dB
