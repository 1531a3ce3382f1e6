"""Model loaders and cached runners: the one place pages reach the engine's heavy work.

Models are loaded once per server process (`st.cache_resource`) and shared by every session;
results are cached per clip, keyed by the sha256 of its bytes (`st.cache_data`), so a clip is
decoded and analysed once whichever page asks first.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from engine import audio, features

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine.compare import Comparison, SetComparison
    from engine.generate import GenerationResult, GenerationSettings, Generator
    from engine.genre import ClipAnalysis, GenreClassifier, GenrePrediction
    from engine.library import Library
    from engine.listeners import Calibration
    from engine.mood import MoodPrediction, TagReliability
    from engine.similar import SearchModels, TrackDescription

# Torch modules are shared across sessions (Streamlit runs each session in its own thread):
# one forward pass at a time keeps memory bounded and the modules' state untouched.
MODEL_LOCK = threading.Lock()
DECODED_CLIPS = 8  # decoded clips kept in memory, shared by all sessions
CACHED_RESULTS = 256  # analysis results kept per runner
SPECTROGRAM_COLUMNS = 1200  # time columns drawn at most; longer clips are averaged down


def sha256_of(data: bytes) -> str:
    """The cache key of a clip: the hex sha256 of its bytes."""
    return hashlib.sha256(data).hexdigest()


@st.cache_resource(show_spinner="Loading the genre model…")
def genre_classifier() -> GenreClassifier:
    """The shipped genre classifier, loaded once per server.

    Raises:
        ModelUnavailable: when checkpoints/genre.pt is missing or unreadable (not cached, so
            the app picks the checkpoint up once it lands).
    """
    from engine import genre

    return genre.load_classifier()


@st.cache_resource(show_spinner="Loading the generator…")
def generator() -> Generator:
    """The shipped music generator, loaded once per server.

    Raises:
        ModelUnavailable: when checkpoints/generator.pt or its tokenizer is missing.
    """
    from engine.generate import load_generator

    return load_generator()


def generate_music(
    settings: GenerationSettings, progress: Callable[[float], None] | None = None
) -> GenerationResult:
    """Generate (and render) music with the shared generator; see `engine.generate.generate`.

    Not cached: the result goes into the session, and the same seed gives the same music anyway.

    Raises:
        InvalidSettings, InvalidMidi, ModelUnavailable: as `engine.generate.generate`.
    """
    from engine.generate import generate

    return generate(settings, generator(), progress=progress)


def load_music(data: bytes, name: str) -> audio.Clip:
    """Decode audio or render MIDI (see `engine.compare.load_music`), once per server.

    Raises:
        InvalidAudio, InvalidMidi, RenderingUnavailable: for unusable input.
    """
    return _music(sha256_of(data), name, data)


@st.cache_resource(show_spinner=False, max_entries=DECODED_CLIPS)
def _music(sha256: str, name: str, _data: bytes) -> audio.Clip:
    from engine.compare import load_music

    return load_music(_data, name=name)


def compare_bytes(a_data: bytes, a_name: str, b_data: bytes, b_name: str) -> Comparison:
    """Compare two pieces (audio or MIDI); cached by the sha256 of both.

    The embedding cosine is left out (None) when the genre model is missing.

    Raises:
        InvalidAudio, InvalidMidi, RenderingUnavailable: for unusable input.
    """
    return _compare(sha256_of(a_data), a_name, a_data, sha256_of(b_data), b_name, b_data)


@st.cache_data(show_spinner=False, max_entries=CACHED_RESULTS)
def _compare(a_sha: str, a_name: str, _a: bytes, b_sha: str, b_name: str, _b: bytes) -> Comparison:
    from engine.compare import compare, is_midi
    from engine.errors import ModelUnavailable

    a, b = load_music(_a, a_name), load_music(_b, b_name)
    try:
        classifier = genre_classifier()
    except ModelUnavailable:
        classifier = None
    with MODEL_LOCK:
        return compare(
            a, b, classifier, a_midi=_a if is_midi(_a) else None, b_midi=_b if is_midi(_b) else None
        )


@st.cache_resource(show_spinner="Loading the Markov baseline…")
def markov() -> Generator:
    """The shipped Markov-chain baseline, loaded once per server.

    Raises:
        ModelUnavailable: when checkpoints/markov.npz or its tokenizer is missing.
    """
    from engine.generate import load_markov

    return load_markov()


def compare_sets(
    style: str, pieces: int, progress: Callable[[float, str], None] | None = None
) -> SetComparison:
    """Frechet distances of ours and Markov to real pieces of a style (see
    `engine.compare.compare_sets`). Not cached: the page keeps the result in its session.

    Raises:
        InvalidSettings, ModelUnavailable, RenderingUnavailable: as the engine's.
    """
    from engine.compare import compare_sets as compare

    models = generator(), markov(), genre_classifier()
    with MODEL_LOCK:
        return compare(style, *models, pieces=pieces, progress=progress)


def load_clip(data: bytes, name: str) -> audio.Clip:
    """Decode and validate a clip's bytes (see `engine.audio.load`), once per server.

    Raises:
        InvalidAudio: for empty, unsupported, corrupt, sample-less or non-finite input.
    """
    return _decoded(sha256_of(data), name, data)


# cache_resource, not cache_data: a decoded 10-minute clip is ~50 MB, and cache_data would
# hand every rerun a fresh copy. The Clip is frozen and never modified, so sharing is safe.
@st.cache_resource(show_spinner=False, max_entries=DECODED_CLIPS)
def _decoded(sha256: str, name: str, _data: bytes) -> audio.Clip:
    return audio.load(_data, name=name)


def classify_bytes(data: bytes, name: str) -> GenrePrediction:
    """Genre of a clip, overall and per window; cached by the sha256 of `data`.

    Args:
        data: the audio file's bytes.
        name: the file name, used in messages.

    Raises:
        InvalidAudio: when the bytes are not usable audio.
        ModelUnavailable: when the genre model has not been trained/shipped.
    """
    return _classify(sha256_of(data), name, data)


@st.cache_data(show_spinner=False, max_entries=CACHED_RESULTS)
def _classify(sha256: str, name: str, _data: bytes) -> GenrePrediction:
    from engine import genre

    return genre.genres_from(_analysis(sha256, name, _data))


@st.cache_data(show_spinner=False, max_entries=CACHED_RESULTS)
def _analysis(sha256: str, name: str, _data: bytes) -> ClipAnalysis:
    """The one encoder pass over a clip whose genre and mood views Classify, Mood and Similar
    show (engine.genre.analyse)."""
    from engine import genre

    clip = load_clip(_data, name)
    classifier = genre_classifier()
    with MODEL_LOCK:
        return genre.analyse(clip, classifier)


@dataclass(frozen=True)
class Spectrogram:
    """A log-mel spectrogram reduced for display."""

    db: np.ndarray  # (mel bands, columns) in dB relative to the peak, float32
    seconds: np.ndarray  # start time of each column in seconds
    band_hz: np.ndarray  # centre frequency of each mel band in Hz


def spectrogram_bytes(data: bytes, name: str) -> Spectrogram:
    """Log-mel spectrogram of a clip for display; cached by the sha256 of `data`.

    Raises:
        InvalidAudio: when the bytes are not usable audio.
    """
    return _spectrogram(sha256_of(data), name, data)


@st.cache_data(show_spinner=False, max_entries=CACHED_RESULTS)
def _spectrogram(sha256: str, name: str, _data: bytes) -> Spectrogram:
    clip = load_clip(_data, name)
    db = features.log_mel_db(clip.samples, sample_rate=clip.sample_rate)
    seconds = features.frame_times(db.shape[1], sample_rate=clip.sample_rate)
    db, seconds = average_columns(db, seconds, max_columns=SPECTROGRAM_COLUMNS)
    band_hz = features.mel_frequencies(n_mels=db.shape[0], sample_rate=clip.sample_rate)
    return Spectrogram(db=db, seconds=seconds, band_hz=band_hz)


def average_columns(
    values: np.ndarray, seconds: np.ndarray, *, max_columns: int
) -> tuple[np.ndarray, np.ndarray]:
    """Average neighbouring time columns so at most `max_columns` remain.

    A browser draws a 10-minute spectrogram (25,000 frames) no better than 1,200 columns,
    and far slower.

    Returns:
        (values with at most max_columns columns, start time of each kept column)
    """
    frames = values.shape[1]
    if frames <= max_columns:
        return values, seconds
    step = int(np.ceil(frames / max_columns))
    usable = frames - frames % step
    head = values[:, :usable].reshape(values.shape[0], -1, step).mean(axis=2)
    columns = [head]
    if usable < frames:
        columns.append(values[:, usable:].mean(axis=1, keepdims=True))
    reduced = np.concatenate(columns, axis=1).astype(np.float32)
    return reduced, seconds[::step][: reduced.shape[1]]


# SQLite allows one writer at a time; the library is shared by every session of the server.
LIBRARY_LOCK = threading.RLock()


@st.cache_resource(show_spinner=False)
def library() -> Library:
    """The studio library (./studio_data or $MUSIC_STUDIO_HOME), opened once per server.

    Raises:
        EngineError: when the library folder or database cannot be opened.
    """
    from engine.library import Library

    return Library.open()


def calibrations() -> dict[str, Calibration]:
    """Every listener's calibration, recomputed only when the community changes."""
    with LIBRARY_LOCK:
        size = library().community_size()
    size.pop("feedback")  # answers do not change calibrations (see engine.listeners)
    with LIBRARY_LOCK:  # tracks analysed again carry new crowd moods
        analysed = library().analysis_counts()
    return _calibrations(tuple(sorted(size.items())) + tuple(sorted(analysed.items())))


@st.cache_resource(show_spinner="Learning how the community hears…", max_entries=2)
def _calibrations(community: tuple) -> dict[str, Calibration]:
    """Every listener's calibration for the `community` (its sizes and analyses): the key."""
    from engine.listeners import community_calibrations
    from engine.mood import MOOD_TAGS

    with LIBRARY_LOCK:
        return community_calibrations(library(), MOOD_TAGS)


def moods_bytes(data: bytes, name: str) -> MoodPrediction:
    """The crowd's moods of a clip (tags, valence, arousal); cached by the sha256 of `data`.

    Raises:
        InvalidAudio: when the bytes are not usable audio.
        ModelUnavailable: when the mood heads have not been trained/shipped.
    """
    return _moods(sha256_of(data), name, data)


@st.cache_data(show_spinner=False, max_entries=CACHED_RESULTS)
def _moods(sha256: str, name: str, _data: bytes) -> MoodPrediction:
    from engine import mood

    return mood.moods_from(_analysis(sha256, name, _data))


def mood_reliability() -> tuple[TagReliability, ...]:
    """How well the shipped mood heads hear each tag (empty when the model stores no figures
    or cannot be loaded: the figures are an aside, never an error)."""
    from engine import mood
    from engine.errors import EngineError

    try:
        return mood.tag_reliability(genre_classifier())
    except EngineError:
        return ()


@st.cache_resource(show_spinner="Loading the search model…")
def search_models() -> SearchModels:
    """The encoder and the search head, loaded once per server.

    Raises:
        ModelUnavailable: when checkpoints/genre.pt or checkpoints/retrieval.pt is missing.
    """
    from engine.retrieval import load_retriever
    from engine.similar import SearchModels

    return SearchModels(
        classifier=genre_classifier(), retriever=load_retriever(), identity=analysis_identity()
    )


@st.cache_resource(show_spinner=False)
def analysis_identity() -> str:
    """What names the shipped models that describe library tracks (read once per server, as
    the models are loaded once).

    Raises:
        ModelUnavailable: when a checkpoint cannot be read (not cached).
    """
    from engine import similar

    return similar.analysis_identity()


def describe_for_library(clip: audio.Clip) -> TrackDescription:
    """What the library stores about a clip (genres, moods, search segments): one pass."""
    from engine.similar import describe

    models = search_models()
    with MODEL_LOCK:
        return describe(clip, models)


def describe_bytes(data: bytes, name: str) -> TrackDescription:
    """A clip's library description (audio or MIDI bytes); cached by the sha256 of `data`.

    Its segments are the clip's query for similar tracks.

    Raises:
        InvalidAudio, InvalidMidi, RenderingUnavailable: for unusable input.
        ModelUnavailable: when a model is missing.
    """
    return _description(sha256_of(data), name, data)


@st.cache_data(show_spinner=False, max_entries=CACHED_RESULTS)
def _description(sha256: str, name: str, _data: bytes) -> TrackDescription:
    return describe_for_library(load_music(_data, name))
