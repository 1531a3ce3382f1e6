"""The studio's persistent catalog: one SQLite database under the studio data folder.

It holds the library's tracks and the listening community: listeners, who follows whom,
playlists with their tracks and tags, and each listener's feedback on mood tags. Every write
is one transaction: an import that fails half way stores nothing of itself.

    lib = Library.open()              # ./studio_data, $MUSIC_STUDIO_HOME or Library.open(dir)
    lib.import_community("csv_dir")   # listeners.csv, follows.csv, playlists.csv, ...
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.audio import Clip
from engine.errors import EngineError, IndexUnavailable
from engine.files import fsync_folder, write_atomic

if TYPE_CHECKING:
    from engine.retrieval import Segments, TrackIndex
    from engine.score.timemap import SystemSpan

HOME_ENV = "MUSIC_STUDIO_HOME"  # overrides the default studio data folder
DEFAULT_HOME = Path("studio_data")  # relative to the working directory
DATABASE_NAME = "library.sqlite"
AUDIO_FOLDER = "audio"  # track audio, one Ogg Vorbis file per track, named by its sha256
# Vorbis at its best quality: tracks are analysed again from this copy after a model update,
# and at libsndfile's default quality the encoder's segment embeddings of a copy drift to a
# cosine of 0.82-0.96 with the original's (0.97-0.997 at this level; about twice the bytes).
AUDIO_COMPRESSION = 0.0
INDEX_FOLDER = "index"  # the search index files (engine.retrieval.TrackIndex.save)
SCORES_FOLDER = "scores"  # engraved pages of the tracks that keep a score: <sha256>/page-N.png
# 2: tracks name the models that analysed them (analysed_by); 3: tracks may keep their score
SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tracks (
    track_id    INTEGER PRIMARY KEY,
    title       TEXT NOT NULL,
    source      TEXT NOT NULL,          -- where it came from: a path, "generated", "demo: ..."
    sha256      TEXT NOT NULL UNIQUE,   -- of the audio: the same audio is never added twice
    duration    REAL NOT NULL,          -- seconds
    moods       TEXT NOT NULL DEFAULT '{}',  -- JSON {tag: crowd probability}
    genres      TEXT NOT NULL DEFAULT '{}',  -- JSON {genre: probability}
    added_at    REAL NOT NULL,
    analysed_by TEXT NOT NULL DEFAULT ''    -- the models that analysed it ('' unknown: schema 1)
);
CREATE TABLE IF NOT EXISTS scores (
    track_id    INTEGER PRIMARY KEY REFERENCES tracks ON DELETE CASCADE,
    musicxml    BLOB NOT NULL,          -- the score as zlib-compressed MusicXML
    systems     TEXT NOT NULL,          -- JSON: each system's page, box and bars in place and time
    pages       INTEGER NOT NULL        -- its engraved pages, PNG files under scores/<sha256>/
);
CREATE TABLE IF NOT EXISTS segments (
    track_id    INTEGER NOT NULL REFERENCES tracks ON DELETE CASCADE,
    start       REAL NOT NULL,          -- seconds into the track
    embedding   BLOB NOT NULL,          -- float32 retrieval embedding
    code        BLOB NOT NULL,          -- the 64-bit hash code, 8 bytes
    PRIMARY KEY (track_id, start)
);
-- The catalog's version: bumped by every change to the segments (triggers below). The search
-- index files name the version they hold; any other version means they are out of date.
CREATE TABLE IF NOT EXISTS catalog (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    catalog_id  TEXT NOT NULL,          -- random: another database never matches this index
    version     INTEGER NOT NULL
);
INSERT OR IGNORE INTO catalog VALUES (1, lower(hex(randomblob(8))), 0);
CREATE TRIGGER IF NOT EXISTS segment_added AFTER INSERT ON segments
BEGIN UPDATE catalog SET version = version + 1; END;
CREATE TRIGGER IF NOT EXISTS segment_removed AFTER DELETE ON segments
BEGIN UPDATE catalog SET version = version + 1; END;
CREATE TABLE IF NOT EXISTS listeners (
    listener_id TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    grp         TEXT NOT NULL DEFAULT '',   -- cultural group ('' when unknown)
    simulated   INTEGER NOT NULL DEFAULT 0  -- 1 for the demo community
);
CREATE TABLE IF NOT EXISTS follows (
    follower    TEXT NOT NULL REFERENCES listeners ON DELETE CASCADE,
    followee    TEXT NOT NULL REFERENCES listeners ON DELETE CASCADE,
    PRIMARY KEY (follower, followee),
    CHECK (follower <> followee)
);
CREATE TABLE IF NOT EXISTS playlists (
    playlist_id TEXT PRIMARY KEY,
    listener_id TEXT NOT NULL REFERENCES listeners ON DELETE CASCADE,
    title       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS playlist_tracks (
    playlist_id TEXT NOT NULL REFERENCES playlists ON DELETE CASCADE,
    track_id    INTEGER NOT NULL REFERENCES tracks ON DELETE CASCADE,
    PRIMARY KEY (playlist_id, track_id)
);
CREATE TABLE IF NOT EXISTS playlist_tags (
    playlist_id TEXT NOT NULL REFERENCES playlists ON DELETE CASCADE,
    tag         TEXT NOT NULL,
    PRIMARY KEY (playlist_id, tag)
);
CREATE TABLE IF NOT EXISTS feedback (
    listener_id TEXT NOT NULL REFERENCES listeners ON DELETE CASCADE,
    clip        TEXT NOT NULL,          -- sha256 of the clip the answer is about
    tag         TEXT NOT NULL,
    accepted    INTEGER NOT NULL,       -- 1: "yes, I hear it", 0: "no"
    crowd       REAL NOT NULL,          -- the crowd model's probability when answered
    answered_at REAL NOT NULL,
    PRIMARY KEY (listener_id, clip, tag)
);
"""


class InvalidImport(EngineError):
    """A community CSV file that cannot be imported; names the file and line."""


@dataclass(frozen=True)
class Track:
    """A track of the library."""

    track_id: int
    title: str
    source: str  # the path it was added from, "generated", or "demo: ..."
    sha256: str  # of its audio (or of the MIDI it was rendered from)
    duration: float  # seconds
    genres: dict[str, float]  # genre probabilities
    moods: dict[str, float]  # crowd mood probabilities
    added_at: float  # Unix time
    analysed_by: str  # the models that analysed it (engine.similar.analysis_identity; "": unknown)

    @property
    def top_genre(self) -> str:
        """The most likely genre ("" when unknown)."""
        return max(self.genres, key=self.genres.get) if self.genres else ""


@dataclass(frozen=True)
class StoredScore:
    """The score a track keeps: its MusicXML, its engraved pages, each system in place and time."""

    musicxml: bytes
    systems: list[SystemSpan]  # in reading order; bar times are seconds into the track's audio
    pages: list[Path]  # the engraved pages (PNG), in order


@dataclass(frozen=True)
class Listener:
    """A person whose moods the studio personalises."""

    listener_id: str
    name: str
    group: str  # cultural group, "" when unknown
    simulated: bool  # part of the demo community


@dataclass(frozen=True)
class Feedback:
    """A listener's answer about one tag of one clip."""

    clip: str  # sha256 of the clip
    tag: str
    accepted: bool
    crowd: float  # the crowd probability of the tag when the listener answered


# The community's CSV files: file name -> required columns (an optional "simulated" column
# in listeners.csv marks the demo community). Documented in docs/community.md.
CSV_COLUMNS: dict[str, tuple[str, ...]] = {
    "listeners.csv": ("listener_id", "name", "group"),
    "follows.csv": ("follower", "followee"),
    "playlists.csv": ("playlist_id", "listener_id", "title"),
    "playlist_tracks.csv": ("playlist_id", "track_id"),
    "playlist_tags.csv": ("playlist_id", "tag"),
}


def default_home() -> Path:
    """The studio data folder: $MUSIC_STUDIO_HOME, else ./studio_data."""
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME)


class Library:
    """The catalog database; open with `Library.open()`; usable as a context manager.

    It keeps the search index (home/index/) in step with the tracks' stored segments: updated
    and saved after every add and delete, and rebuilt from the catalog when its files are
    missing, damaged or out of date. What the person should know about that (a rebuild) is
    collected in `notices`; callers show `take_notices()`.
    """

    def __init__(self, connection: sqlite3.Connection, home: Path) -> None:
        self.connection = connection
        self.home = home
        self.notices: list[str] = []  # for the person: e.g. "the search index was rebuilt"
        self._index: TrackIndex | None = None  # loaded lazily; its stamp names its version

    @classmethod
    def open(cls, home: str | Path | None = None) -> Library:
        """Open (creating if needed) the library in `home` (default: `default_home()`).

        Raises:
            EngineError: when the folder cannot be created or the database cannot be read.
        """
        folder = Path(home) if home is not None else default_home()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                folder / DATABASE_NAME, timeout=30.0, check_same_thread=False
            )
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute("PRAGMA journal_mode = WAL")
            with connection:
                connection.executescript(_SCHEMA)
                columns = {row[1] for row in connection.execute("PRAGMA table_info(tracks)")}
                if "analysed_by" not in columns:  # a schema 1 library: its tracks' models unknown
                    connection.execute(
                        "ALTER TABLE tracks ADD COLUMN analysed_by TEXT NOT NULL DEFAULT ''"
                    )
                connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except (OSError, sqlite3.DatabaseError) as err:
            raise EngineError(f"The studio library in {folder} cannot be opened ({err}).") from None
        return cls(connection, folder)

    def close(self) -> None:
        """Close the database."""
        self.connection.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All writes inside commit together, or none do."""
        with self.connection:
            yield self.connection

    @contextmanager
    def _exclusive(self) -> Iterator[sqlite3.Connection]:
        """A transaction that holds the write lock from its start, so what it reads (the
        catalog version) no other process changes before it commits."""
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield self.connection
        except BaseException:
            self.connection.rollback()
            raise
        self.connection.commit()

    # ----------------------------------------------------------------------------------
    # Tracks (the minimum the community needs; the library capability adds the rest)

    def add_track(
        self,
        *,
        title: str,
        source: str,
        sha256: str,
        duration: float,
        moods: dict[str, float] | None = None,
        genres: dict[str, float] | None = None,
        segments: Segments | None = None,
        analysed_by: str = "",
    ) -> tuple[int, bool]:
        """Add a track, with its search segments, unless the same audio is there already.

        `analysed_by` names the models whose analysis (moods, genres, segments) is stored.

        The track and its segments are stored in one transaction, then the search index is
        brought in step (a failure there leaves a notice; the index is rebuilt when next used).

        Returns:
            (track_id, True when it was added now / False when it was there already)
        """
        with self._exclusive() as db:
            before = self.catalog_stamp()
            row = db.execute("SELECT track_id FROM tracks WHERE sha256 = ?", (sha256,)).fetchone()
            if row:
                return int(row[0]), False
            first = db.execute("SELECT NOT EXISTS (SELECT 1 FROM segments)").fetchone()[0]
            cursor = db.execute(
                "INSERT INTO tracks "
                "(title, source, sha256, duration, moods, genres, added_at, analysed_by) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    title,
                    source,
                    sha256,
                    float(duration),
                    json.dumps(moods or {}),
                    json.dumps(genres or {}),
                    time.time(),
                    analysed_by,
                ),
            )
            track_id = int(cursor.lastrowid)
            if segments is not None:
                _insert_segments(db, track_id, segments)
            after = self.catalog_stamp()
        if segments is not None:
            self._index_added(before, after, track_id, segments, first=bool(first))
        return track_id, True

    def store_analysis(
        self,
        track_id: int,
        *,
        moods: dict[str, float],
        genres: dict[str, float],
        segments: Segments,
        analysed_by: str,
    ) -> None:
        """Replace a stored track's analysis (moods, genres, search segments, the models that
        made it) in one transaction, and index its segments.

        Raises:
            EngineError: when there is no such track.
        """
        with self._exclusive() as db:
            updated = db.execute(
                "UPDATE tracks SET moods = ?, genres = ?, analysed_by = ? WHERE track_id = ?",
                (json.dumps(moods), json.dumps(genres), analysed_by, track_id),
            ).rowcount
            if not updated:
                raise EngineError(f"There is no track {track_id} in the library.")
            before = self.catalog_stamp()
            first = db.execute("SELECT NOT EXISTS (SELECT 1 FROM segments)").fetchone()[0]
            db.execute("DELETE FROM segments WHERE track_id = ?", (track_id,))
            _insert_segments(db, track_id, segments)
            after = self.catalog_stamp()
        self._index_added(before, after, track_id, segments, first=bool(first))

    def add_clip(
        self,
        clip: Clip,
        *,
        title: str,
        source: str,
        moods: dict[str, float] | None = None,
        genres: dict[str, float] | None = None,
        segments: Segments | None = None,
        analysed_by: str = "",
    ) -> tuple[int, bool]:
        """Store a clip's audio under the library folder and add it as a track (see add_track).

        The file is written to a temporary name, synced and renamed, so a crash never leaves
        half a file under a track's name; the row is added after the file exists.

        Returns:
            (track_id, True when it was added now / False when the same audio was there)
        """
        import soundfile as sf

        path = self.audio_path(clip.sha256)
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            buffer = io.BytesIO()
            sf.write(
                buffer,
                clip.samples,
                clip.sample_rate,
                format="OGG",
                subtype="VORBIS",
                compression_level=AUDIO_COMPRESSION,
            )
            write_atomic(path, buffer.getbuffer())
        return self.add_track(
            title=title,
            source=source,
            sha256=clip.sha256,
            duration=clip.duration,
            moods=moods,
            genres=genres,
            segments=segments,
            analysed_by=analysed_by,
        )

    def tracks(self, title: str = "") -> list[Track]:
        """Tracks whose title contains `title` (any case), newest first."""
        rows = self.connection.execute(
            f"SELECT {_TRACK_COLUMNS} FROM tracks WHERE title LIKE ? ESCAPE '\\' "
            "ORDER BY added_at DESC, track_id DESC",
            (f"%{_escape_like(title)}%",),
        ).fetchall()
        return [_track(row) for row in rows]

    def tracks_analysed_otherwise(self, analysed_by: str) -> list[Track]:
        """Tracks whose stored analysis other models (or an earlier analysis) made than
        `analysed_by` names, oldest first."""
        rows = self.connection.execute(
            f"SELECT {_TRACK_COLUMNS} FROM tracks WHERE analysed_by <> ? "
            "ORDER BY added_at, track_id",
            (analysed_by,),
        ).fetchall()
        return [_track(row) for row in rows]

    def analysis_counts(self) -> dict[str, int]:
        """How many tracks each set of models analysed (engine.similar.analysis_identity)."""
        rows = self.connection.execute(
            "SELECT analysed_by, COUNT(*) FROM tracks GROUP BY analysed_by"
        ).fetchall()
        return {str(analysed_by): int(count) for analysed_by, count in rows}

    def track(self, track_id: int) -> Track | None:
        """One track, or None."""
        row = self.connection.execute(
            f"SELECT {_TRACK_COLUMNS} FROM tracks WHERE track_id = ?", (track_id,)
        ).fetchone()
        return _track(row) if row else None

    def delete_track(self, track_id: int) -> bool:
        """Remove a track, its segments, playlist entries and audio; False if it was not there."""
        track = self.track(track_id)
        if track is None:
            return False
        with self._exclusive() as db:
            before = self.catalog_stamp()
            db.execute("DELETE FROM tracks WHERE track_id = ?", (track_id,))
            after = self.catalog_stamp()
        self._index_changed(before, after, lambda index: index.remove(track_id))
        self.audio_path(track.sha256).unlink(missing_ok=True)
        shutil.rmtree(self._score_folder(track.sha256), ignore_errors=True)
        return True

    def is_searchable(self, sha256: str) -> bool:
        """True when the track with this content hash is stored with its search segments."""
        query = "SELECT 1 FROM tracks JOIN segments USING (track_id) WHERE sha256 = ? LIMIT 1"
        return self.connection.execute(query, (sha256,)).fetchone() is not None

    def track_by_hash(self, sha256: str) -> Track | None:
        """The track with this content hash, or None."""
        row = self.connection.execute(
            f"SELECT {_TRACK_COLUMNS} FROM tracks WHERE sha256 = ?", (sha256,)
        ).fetchone()
        return _track(row) if row else None

    def audio_path(self, sha256: str) -> Path:
        """Where the audio of the track with this sha256 is (or would be) stored."""
        return self.home / AUDIO_FOLDER / f"{sha256}.ogg"

    # ----------------------------------------------------------------------------------
    # Scores

    def store_score(self, track_id: int, musicxml: bytes, systems: Sequence[SystemSpan],
                    pages: Sequence[bytes]) -> None:
        """Keep a track's score: its pages (PNG bytes) written first, then the row, so a
        crash never leaves a row without its pages.

        Raises:
            EngineError: when there is no such track.
        """
        track = self.track(track_id)
        if track is None:
            raise EngineError(f"There is no track {track_id} in the library.")
        folder = self._score_folder(track.sha256)
        folder.mkdir(parents=True, exist_ok=True)
        for number, page in enumerate(pages):
            write_atomic(folder / f"page-{number + 1}.png", page)
        fsync_folder(folder)
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO scores (track_id, musicxml, systems, pages) "
                "VALUES (?, ?, ?, ?)",
                (track_id, zlib.compress(musicxml, 6),
                 json.dumps([asdict(system) for system in systems]), len(pages)),
            )

    def score(self, track_id: int) -> StoredScore | None:
        """The score a track keeps, or None when it has none."""
        from engine.score.timemap import BarSpan, SystemSpan

        row = self.connection.execute(
            "SELECT musicxml, systems, pages, sha256 FROM scores JOIN tracks USING (track_id) "
            "WHERE track_id = ?", (track_id,)).fetchone()
        if row is None:
            return None
        systems = [SystemSpan(**{**entry, "bars": tuple(BarSpan(**bar) for bar in entry["bars"])})
                   for entry in json.loads(row[1])]
        folder = self._score_folder(row[3])
        return StoredScore(zlib.decompress(row[0]), systems,
                           [folder / f"page-{n + 1}.png" for n in range(int(row[2]))])

    def scored_track_ids(self) -> list[int]:
        """The tracks that keep a score, oldest first."""
        rows = self.connection.execute("SELECT track_id FROM scores ORDER BY track_id")
        return [int(row[0]) for row in rows]

    def _score_folder(self, sha256: str) -> Path:
        return self.home / SCORES_FOLDER / sha256

    # ----------------------------------------------------------------------------------
    # The search index

    def catalog_stamp(self) -> str:
        """The catalog's identity and version: what an index in step with it is stamped with."""
        catalog_id, version = self.connection.execute(
            "SELECT catalog_id, version FROM catalog"
        ).fetchone()
        return f"{catalog_id}:{version}"

    def stored_segments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every stored segment, by track then start.

        Returns:
            (track ids (n,) int64, embeddings (n, D) float32, codes (n, 8) uint8)
        """
        rows = self.connection.execute(
            "SELECT track_id, embedding, code FROM segments ORDER BY track_id, start"
        ).fetchall()
        track_ids = np.array([row[0] for row in rows], dtype=np.int64)
        embeddings = np.array([np.frombuffer(row[1], dtype="<f4") for row in rows], np.float32)
        codes = np.array([np.frombuffer(row[2], dtype=np.uint8) for row in rows], np.uint8)
        return track_ids, embeddings, codes

    def track_segments(self, track_id: int) -> Segments | None:
        """A track's stored segments (a query for the tracks like it), or None."""
        from engine.retrieval import Segments

        rows = self.connection.execute(
            "SELECT start, embedding, code FROM segments WHERE track_id = ? ORDER BY start",
            (track_id,),
        ).fetchall()
        if not rows:
            return None
        return Segments(
            starts=np.array([row[0] for row in rows], dtype=np.float64),
            embeddings=np.array([np.frombuffer(row[1], dtype="<f4") for row in rows], np.float32),
            codes=np.array([np.frombuffer(row[2], dtype=np.uint8) for row in rows], np.uint8),
        )

    def search_index(self) -> TrackIndex | None:
        """The search index in step with the catalog; None while no track has segments.

        Kept in memory; when the catalog changed elsewhere (another process), it is read again
        from home/index/, and when those files are missing, damaged or out of date it is rebuilt
        from the stored segments and saved, with a notice.

        Raises:
            IndexUnavailable: when FAISS is not installed.
        """
        from engine.retrieval import TrackIndex

        stamp = self.catalog_stamp()
        if self._index is not None and self._index.stamp == stamp:
            return self._index
        folder = self.home / INDEX_FOLDER
        problem = None
        try:
            index = TrackIndex.load(folder)
        except IndexUnavailable as err:
            index, problem = None, str(err)
        if index is not None and index.stamp != stamp:
            index, problem = None, f"The search index in {folder} is out of date."
        if index is None:
            track_ids, embeddings, codes = self.stored_segments()
            if not len(track_ids):
                self._index = None
                return None
            index = TrackIndex(track_ids, embeddings, codes)
            index.stamp = stamp
            problem = re.sub(r": rebuild (it|the index) from the library\.$", ".", problem)
            self.notices.append(
                f"{problem} It was rebuilt from the library's "
                f"{len(np.unique(track_ids))} indexed tracks."
            )
            try:
                self._save_index(index)
            except OSError as err:
                self.notices.append(f"The rebuilt search index could not be saved ({err}).")
        self._index = index
        return index

    def take_notices(self) -> list[str]:
        """The notices collected so far (emptied)."""
        notices, self.notices = self.notices, []
        return notices

    def _save_index(self, index: TrackIndex) -> None:
        folder = self.home / INDEX_FOLDER
        index.save(folder, stamp=index.stamp)
        fsync_folder(self.home)

    def _saved_index(self, stamp: str) -> TrackIndex | None:
        """The saved index when it holds catalog version `stamp`, else None (no notice)."""
        from engine.retrieval import TrackIndex

        try:
            index = TrackIndex.load(self.home / INDEX_FOLDER)
        except IndexUnavailable:
            return None
        return index if index.stamp == stamp else None

    def _index_added(
        self, before: str, after: str, track_id: int, segments: Segments, *, first: bool
    ) -> None:
        """Index a track's segments just stored (see _index_changed)."""
        self._index_changed(
            before,
            after,
            lambda index: index.add(track_id, segments),
            first=first,
            dim=segments.embeddings.shape[1],
        )

    def _index_changed(
        self,
        before: str,
        after: str,
        change: Callable[[TrackIndex], object],
        *,
        first: bool = False,
        dim: int = 0,
    ) -> None:
        """Bring the index from catalog version `before` to `after` by `change`, and save it.

        Args:
            first: the change adds the library's first segments (of `dim`-d embeddings): the
                index starts empty, with no notice.
        """
        from engine.retrieval import TrackIndex

        try:
            if first:
                index = TrackIndex.empty(dim)
            elif self._index is not None and self._index.stamp == before:
                index = self._index
            else:
                index = self._saved_index(before)
            if index is None:
                self._index = None
                self.search_index()  # rebuilt at `after`: the change is in
                return
            change(index)
            index.stamp = after
            self._index = index
            self._save_index(index)
        except (IndexUnavailable, OSError) as err:
            self._index = None
            self.notices.append(
                f"The search index could not be updated ({err}); it will be rebuilt from the "
                "library when next searched."
            )

    def track_moods(self) -> dict[int, dict[str, float]]:
        """The crowd mood probabilities of every track, by track id."""
        rows = self.connection.execute("SELECT track_id, moods FROM tracks").fetchall()
        return {int(track_id): json.loads(moods) for track_id, moods in rows}

    # ----------------------------------------------------------------------------------
    # Listeners and the community

    def listeners(self) -> list[Listener]:
        """All listeners, people first, then the demo community, each by name."""
        rows = self.connection.execute(
            "SELECT listener_id, name, grp, simulated FROM listeners ORDER BY simulated, name"
        ).fetchall()
        return [Listener(i, n, g, bool(s)) for i, n, g, s in rows]

    def listener(self, listener_id: str) -> Listener | None:
        """One listener, or None."""
        row = self.connection.execute(
            "SELECT listener_id, name, grp, simulated FROM listeners WHERE listener_id = ?",
            (listener_id,),
        ).fetchone()
        return Listener(row[0], row[1], row[2], bool(row[3])) if row else None

    def add_listener(self, name: str, *, group: str = "", follows: Sequence[str] = ()) -> Listener:
        """Create a listener (a person, not simulated) who follows `follows`.

        Raises:
            EngineError: for an empty name or an unknown listener to follow.
        """
        name = " ".join(str(name).split())
        if not name:
            raise EngineError("A listener needs a name.")
        with self.transaction() as db:
            taken = {row[0] for row in db.execute("SELECT listener_id FROM listeners")}
            base = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-") or "listener"
            listener_id, n = base, 2
            while listener_id in taken:
                listener_id, n = f"{base}-{n}", n + 1
            db.execute("INSERT INTO listeners VALUES (?, ?, ?, 0)", (listener_id, name, group))
            for other in follows:
                if other not in taken:
                    raise EngineError(f"There is no listener {other!r} to follow.")
                db.execute("INSERT OR IGNORE INTO follows VALUES (?, ?)", (listener_id, other))
        return Listener(listener_id, name, group, False)

    def follows(self) -> list[tuple[str, str]]:
        """Every (follower, followee) edge."""
        return [tuple(row) for row in self.connection.execute("SELECT * FROM follows")]

    def track_tags(self) -> dict[int, dict[str, set[str]]]:
        """Who tagged which track how: {track_id: {listener_id: {tags}}} via their playlists."""
        rows = self.connection.execute(
            "SELECT pt.track_id, p.listener_id, g.tag FROM playlist_tracks pt "
            "JOIN playlists p USING (playlist_id) JOIN playlist_tags g USING (playlist_id)"
        )
        tags: dict[int, dict[str, set[str]]] = {}
        for track_id, listener_id, tag in rows:
            tags.setdefault(int(track_id), {}).setdefault(listener_id, set()).add(tag)
        return tags

    def community_size(self) -> dict[str, int]:
        """How many listeners, follows, playlists, tracks and feedback answers are stored."""
        tables = ("listeners", "follows", "playlists", "tracks", "feedback")
        return {
            t: self.connection.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables
        }

    # ----------------------------------------------------------------------------------
    # Feedback

    def add_feedback(
        self, listener_id: str, clip: str, tag: str, *, accepted: bool, crowd: float
    ) -> None:
        """Store (or replace) a listener's answer about one tag of one clip.

        Raises:
            EngineError: for an unknown listener.
        """
        if self.listener(listener_id) is None:
            raise EngineError(f"There is no listener {listener_id!r}.")
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO feedback VALUES (?, ?, ?, ?, ?, ?)",
                (listener_id, clip, tag, int(accepted), float(crowd), time.time()),
            )

    def feedback(self, listener_id: str) -> list[Feedback]:
        """A listener's answers, oldest first."""
        rows = self.connection.execute(
            "SELECT clip, tag, accepted, crowd FROM feedback WHERE listener_id = ? "
            "ORDER BY answered_at",
            (listener_id,),
        ).fetchall()
        return [Feedback(c, t, bool(a), float(p)) for c, t, a, p in rows]

    # ----------------------------------------------------------------------------------
    # CSV import and export

    def import_community(self, folder: str | Path, *, tags: Sequence[str]) -> dict[str, int]:
        """Import the community CSV files found in `folder` (see CSV_COLUMNS), all or nothing.

        Playlist tags outside `tags` are dropped (and counted). Rows already stored are kept.

        Returns:
            Rows imported per file, plus "dropped_tags".

        Raises:
            InvalidImport: naming the file and line of the first problem; nothing is stored.
        """
        folder = Path(folder)
        present = [name for name in CSV_COLUMNS if (folder / name).is_file()]
        if not present:
            raise InvalidImport(
                f"{folder} holds none of the community files ({', '.join(CSV_COLUMNS)})."
            )
        counts = {"dropped_tags": 0}
        known_tags = set(tags)
        try:
            with self.transaction() as db:
                for name in present:
                    counts[name] = 0
                    for line, row in _read_csv(folder / name):
                        try:
                            dropped = _insert_row(db, name, row, known_tags)
                        except (sqlite3.IntegrityError, ValueError) as err:
                            raise InvalidImport(f"{name}, line {line}: {err}") from None
                        counts["dropped_tags"] += dropped
                        counts[name] += 1 - dropped
        except sqlite3.DatabaseError as err:
            raise InvalidImport(f"The import could not be stored ({err}).") from None
        return counts

    def export_community(self, folder: str | Path) -> list[Path]:
        """Write the community as CSV files into `folder` (created); returns the files."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        queries = {
            "listeners.csv": "SELECT listener_id, name, grp, simulated FROM listeners "
            "ORDER BY listener_id",
            "follows.csv": "SELECT follower, followee FROM follows ORDER BY 1, 2",
            "playlists.csv": "SELECT playlist_id, listener_id, title FROM playlists ORDER BY 1",
            "playlist_tracks.csv": "SELECT playlist_id, track_id FROM playlist_tracks "
            "ORDER BY 1, 2",
            "playlist_tags.csv": "SELECT playlist_id, tag FROM playlist_tags ORDER BY 1, 2",
        }
        written = []
        for name, query in queries.items():
            header = (*CSV_COLUMNS[name], "simulated") if name == "listeners.csv" else None
            path = folder / name
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(header or CSV_COLUMNS[name])
                writer.writerows(self.connection.execute(query))
            written.append(path)
        return written


_TRACK_COLUMNS = "track_id, title, source, sha256, duration, genres, moods, added_at, analysed_by"


def _track(row: tuple) -> Track:
    track_id, title, source, sha256, duration, genres, moods, added_at, analysed_by = row
    return Track(
        int(track_id),
        title,
        source,
        sha256,
        float(duration),
        json.loads(genres),
        json.loads(moods),
        float(added_at),
        analysed_by,
    )


def _insert_segments(db: sqlite3.Connection, track_id: int, segments: Segments) -> None:
    db.executemany(
        "INSERT INTO segments (track_id, start, embedding, code) VALUES (?, ?, ?, ?)",
        [
            (
                track_id,
                float(start),
                np.asarray(embedding, dtype="<f4").tobytes(),
                np.asarray(code, dtype=np.uint8).tobytes(),
            )
            for start, embedding, code in zip(
                segments.starts, segments.embeddings, segments.codes, strict=True
            )
        ],
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _read_csv(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV file with a header, checking its columns."""
    name = path.name
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in CSV_COLUMNS[name] if c not in (reader.fieldnames or [])]
            if missing:
                raise InvalidImport(
                    f"{name}, line 1: the header lacks {', '.join(missing)} "
                    f"(expected: {', '.join(CSV_COLUMNS[name])})."
                )
            for row in reader:
                if None in row or any(row.get(c) is None for c in CSV_COLUMNS[name]):
                    raise InvalidImport(
                        f"{name}, line {reader.line_num}: expected {len(reader.fieldnames)} fields."
                    )
                yield reader.line_num, {k: v.strip() for k, v in row.items()}
    except UnicodeDecodeError:
        raise InvalidImport(f"{name}: not UTF-8 text.") from None
    except csv.Error as err:
        raise InvalidImport(f"{name}: not a readable CSV file ({err}).") from None


def _insert_row(db: sqlite3.Connection, name: str, row: dict[str, str], tags: set[str]) -> int:
    """Insert one CSV row; returns 1 when it was a dropped tag, else 0."""
    for column in CSV_COLUMNS[name]:
        if not row[column] and column != "group":
            raise ValueError(f"{column} is empty")
    if name == "listeners.csv":
        simulated = row.get("simulated", "0") or "0"
        if simulated not in ("0", "1"):
            raise ValueError(f"simulated must be 0 or 1, not {simulated!r}")
        db.execute(
            "INSERT OR REPLACE INTO listeners VALUES (?, ?, ?, ?)",
            (row["listener_id"], row["name"], row["group"], int(simulated)),
        )
    elif name == "follows.csv":
        if row["follower"] == row["followee"]:
            raise ValueError("a listener cannot follow themselves")
        _require(db, "listeners", "listener_id", row["follower"])
        _require(db, "listeners", "listener_id", row["followee"])
        db.execute(
            "INSERT OR IGNORE INTO follows VALUES (?, ?)", (row["follower"], row["followee"])
        )
    elif name == "playlists.csv":
        _require(db, "listeners", "listener_id", row["listener_id"])
        db.execute(
            "INSERT OR REPLACE INTO playlists VALUES (?, ?, ?)",
            (row["playlist_id"], row["listener_id"], row["title"]),
        )
    elif name == "playlist_tracks.csv":
        if not row["track_id"].isdigit():
            raise ValueError(f"track_id must be a whole number, not {row['track_id']!r}")
        _require(db, "playlists", "playlist_id", row["playlist_id"])
        _require(db, "tracks", "track_id", int(row["track_id"]))
        db.execute(
            "INSERT OR IGNORE INTO playlist_tracks VALUES (?, ?)",
            (row["playlist_id"], int(row["track_id"])),
        )
    else:
        _require(db, "playlists", "playlist_id", row["playlist_id"])
        tag = row["tag"].lower()
        if tag not in tags:
            return 1
        db.execute("INSERT OR IGNORE INTO playlist_tags VALUES (?, ?)", (row["playlist_id"], tag))
    return 0


def _require(db: sqlite3.Connection, table: str, column: str, value: object) -> None:
    if db.execute(f"SELECT 1 FROM {table} WHERE {column} = ?", (value,)).fetchone() is None:
        raise ValueError(f"there is no {column} {value!r} (import {table} first)")
