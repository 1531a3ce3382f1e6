"""Similar-track search over the library: add music once, find the tracks that sound like a clip.

A piece is analysed by one encoder pass (engine.retrieval.search_analysis) that gives what the
library stores about it: genre and mood probabilities and its search segments, stamped with the
models that made them. When the models change, `reanalyse` describes the stored tracks anew.

    models = load_models()
    added = add_file(library, "song.mp3", models)          # audio or MIDI
    matches = search(library, query_segments(clip, models), k=10, genre="jazz")
    reanalyse(library, models)                             # after a model update
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.audio import Clip
from engine.errors import EngineError, InvalidSettings, MissingFile, ModelUnavailable
from engine.files import fingerprint
from engine.genre import GenreClassifier, genres_from
from engine.library import Library, Track
from engine.retrieval import Retriever, Segments, search_analysis, segments_from
from engine.scored import ScoredTrack, scored_track

# Bumped when what the library stores about a piece changes other than by new weights (2: clips
# are read at the level of released music, engine.audio.released_level): tracks analysed before
# are described anew by `reanalyse`.
ANALYSIS_VERSION = 2


class EmptyLibrary(EngineError):
    """The library holds no searchable track yet."""


@dataclass(frozen=True)
class SearchModels:
    """The models that analyse music for the library."""

    classifier: GenreClassifier  # the studio encoder with its genre and mood heads
    retriever: Retriever  # the search head over the encoder's embeddings
    identity: str = ""  # names these models and the analysis (analysis_identity)


@dataclass(frozen=True)
class TrackDescription:
    """What the library stores about a piece."""

    genres: dict[str, float]  # genre probabilities
    moods: dict[str, float]  # crowd mood probabilities ({} when the model has no mood heads)
    segments: Segments  # search embeddings and hash codes of its overlapping segments
    analysed_by: str = ""  # the models that made it (SearchModels.identity)


@dataclass(frozen=True)
class Added:
    """The outcome of adding a piece."""

    track: Track  # the track as stored (the earlier one when `new` is False)
    new: bool  # False: the same audio was in the library already, nothing was added


@dataclass(frozen=True)
class Reanalysis:
    """The outcome of describing the library's tracks anew."""

    done: int  # tracks now described by the current models
    failed: tuple[tuple[Track, str], ...]  # tracks that keep their earlier analysis, and why


@dataclass(frozen=True)
class Match:
    """A library track that sounds like the query."""

    track: Track
    score: float  # similarity, higher is closer (cosine of the best segments, <= 1)


def load_models() -> SearchModels:
    """Load the encoder and the search head (see engine.genre and engine.retrieval).

    Raises:
        ModelUnavailable: when a checkpoint is missing or unreadable.
    """
    from engine.genre import load_classifier
    from engine.retrieval import load_retriever

    return SearchModels(
        classifier=load_classifier(), retriever=load_retriever(), identity=analysis_identity()
    )


def analysis_identity() -> str:
    """What names the models and the analysis that describe music for the library: the
    fingerprints of the encoder's and the search head's checkpoints, and ANALYSIS_VERSION.

    Raises:
        ModelUnavailable: when a checkpoint cannot be read.
    """
    from engine import genre, retrieval

    parts = []
    for path in (genre.default_checkpoint(), retrieval.default_checkpoint()):
        try:
            parts.append(fingerprint(path)[:16])
        except OSError as err:
            raise ModelUnavailable(
                f"The model file {path.name} cannot be read ({err.strerror}); reinstall the studio."
            ) from None
    return "+".join([*parts, f"v{ANALYSIS_VERSION}"])


def describe(clip: Clip, models: SearchModels) -> TrackDescription:
    """Analyse a clip for the library: one encoder pass."""
    from engine.mood import moods_from

    analysis = search_analysis(clip, models.classifier)
    try:
        moods = moods_from(analysis).tags
    except ModelUnavailable:
        moods = {}
    return TrackDescription(
        genres=genres_from(analysis).genres,
        moods=moods,
        segments=segments_from(analysis, models.retriever),
        analysed_by=models.identity,
    )


def query_segments(clip: Clip, models: SearchModels) -> Segments:
    """A clip's search segments, to look for the tracks like it."""
    return segments_from(search_analysis(clip, models.classifier), models.retriever)


def add_clip(
    library: Library,
    clip: Clip,
    *,
    title: str,
    source: str,
    description: TrackDescription | None = None,
    models: SearchModels | None = None,
) -> Added:
    """Add a clip to the library with its description; nothing twice (by content hash).

    A track stored without search segments (before search existed) is described now.

    Args:
        library: where to add it.
        clip: its audio (stored as Ogg Vorbis under the library folder).
        title: shown in the library.
        source: where it came from: a path, "generated", "recording" ...
        description: from `describe`; computed with `models` when None.
        models: needed when `description` is None.
    """
    existing = library.track_by_hash(clip.sha256)
    if existing is not None and library.is_searchable(clip.sha256):
        return Added(existing, new=False)
    if description is None:
        assert models is not None, "add_clip needs a description or the models to make one"
        description = describe(clip, models)
    if existing is not None:  # stored before it could be searched: describe it now
        store(library, existing.track_id, description)
        return Added(library.track(existing.track_id) or existing, new=False)
    track_id, new = library.add_clip(
        clip,
        title=title,
        source=source,
        moods=description.moods,
        genres=description.genres,
        segments=description.segments,
        analysed_by=description.analysed_by,
    )
    track = library.track(track_id)
    assert track is not None  # just committed
    return Added(track, new=new)


def store(library: Library, track_id: int, description: TrackDescription) -> None:
    """Store a description as a library track's analysis, replacing what it had."""
    library.store_analysis(
        track_id,
        moods=description.moods,
        genres=description.genres,
        segments=description.segments,
        analysed_by=description.analysed_by,
    )


def outdated_tracks(library: Library, models: SearchModels) -> list[Track]:
    """The tracks other models (or an earlier analysis) described than `models`."""
    return library.tracks_analysed_otherwise(models.identity)


def reanalyse(
    library: Library,
    models: SearchModels,
    *,
    progress: Callable[[float, str], None] | None = None,
) -> Reanalysis:
    """Describe anew, from their stored audio, the tracks that other models described.

    Each track is stored as soon as it is done, so an interrupted run keeps what it did; a
    track whose audio cannot be read keeps its earlier analysis and is reported.

    Args:
        library: whose tracks.
        models: the models that describe them now.
        progress: called with (fraction done, the track being analysed / at the end, a
            summary).
    """
    from engine.audio import load

    tracks = outdated_tracks(library, models)
    done, failed = 0, []
    for i, track in enumerate(tracks):
        if progress is not None:
            progress(i / len(tracks), track.title)
        path = library.audio_path(track.sha256)
        if not path.is_file():
            failed.append((track, f"its audio is missing from the library ({path})."))
            continue
        try:
            store(library, track.track_id, describe(load(path, name=track.title), models))
        except EngineError as err:
            failed.append((track, str(err)))
            continue
        done += 1
    if progress is not None:
        progress(1.0, f"{done} of {len(tracks)} tracks analysed again")
    return Reanalysis(done=done, failed=tuple(failed))


def add_file(library: Library, path: str | Path, models: SearchModels) -> Added:
    """Add an audio, MIDI or score file (MusicXML or MXL: engraved, played, and its score kept
    with the track; MIDI is made into a score the same way, else rendered as sound only),
    titled by its name, its path as source.

    A file whose bytes are in the library already is neither decoded nor analysed again.

    Raises:
        InvalidAudio, InvalidMidi, InvalidScoreFile, RenderingUnavailable: when it cannot be
            read or rendered.
    """
    from engine.compare import load_music

    path = Path(path)
    if not path.is_file():
        raise MissingFile(f"There is no file called {path.name} there; check the path.")
    data = path.read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    if library.is_searchable(sha256):
        return Added(library.track_by_hash(sha256), new=False)
    scored = scored_track(data, path.name)
    if scored is not None:
        return add_scored(library, scored, title=title_of(path), source=os.path.abspath(path),
                          models=models)
    clip = load_music(data, name=path.name)
    return add_clip(
        library, clip, title=title_of(path), source=os.path.abspath(path), models=models
    )


def add_scored(library: Library, scored: ScoredTrack, *, title: str, source: str,
               models: SearchModels) -> Added:
    """Add a score (`engine.scored.scored_track`) as a track that keeps it: its audio rendered
    from the engraving, described like any track; a track stored without its score gets it."""
    added = add_clip(library, scored.clip, title=title, source=source, models=models)
    keep_score(library, added.track.track_id, scored)
    return added


def keep_score(library: Library, track_id: int, scored: ScoredTrack) -> None:
    """Store a track's score unless it keeps one already."""
    if library.score(track_id) is None:
        library.store_score(track_id, scored.musicxml, scored.timed.systems,
                            scored.page_images())


def title_of(path: str | Path) -> str:
    """A track title from a file name: "bach_chorale-01.wav" -> "bach chorale 01"."""
    stem = Path(path).stem.replace("_", " ").replace("-", " ")
    return " ".join(stem.split()) or Path(path).name


def search(
    library: Library,
    query: Segments,
    *,
    k: int = 10,
    genre: str | None = None,
    exclude: int | None = None,
) -> list[Match]:
    """The k library tracks that sound most like a query, best first.

    Args:
        library: where to look.
        query: from `query_segments`.
        k: how many tracks.
        genre: only tracks whose most likely genre this is.
        exclude: a track to leave out (the query itself, when it is a library track).

    Raises:
        EmptyLibrary: when no track of the library can be searched yet.
        InvalidSettings: for k < 1.
        IndexUnavailable: when FAISS is missing or the query comes from another search model.
    """
    if k < 1:
        raise InvalidSettings(f"k = {k}: ask for at least one track.")
    index = library.search_index()
    if index is None or not len(index):
        raise EmptyLibrary(
            f"The library in {library.home} has no tracks to search yet: add some (the Library "
            "page, or `python -m engine library add FILE...`) or build the demo library "
            "(`python -m engine library demo`)."
        )
    tracks = {track.track_id: track for track in library.tracks()}
    wanted = {
        track_id
        for track_id, track in tracks.items()
        if track_id != exclude and (genre is None or track.top_genre == genre)
    }
    fetch = k + (exclude is not None) if genre is None else len(tracks)
    ranked = index.search(query, max(1, min(fetch, len(tracks))))
    return [Match(tracks[t], score) for t, score in ranked if t in wanted][:k]
