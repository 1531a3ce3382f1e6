"""AppTest fixtures: the real app script with the engine's model calls stubbed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from engine.genre import GENRES, GenrePrediction, GenreSegment
from engine.mood import MoodPrediction
from ui.generation import GeneratedTrack

if TYPE_CHECKING:
    from engine.similar import TrackDescription

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "streamlit_app.py"
TIMEOUT = 60  # seconds per script run: the first run imports torch


def fake_prediction(
    top: str = "jazz", seconds: float = 12.0, warnings: tuple[str, ...] = ()
) -> GenrePrediction:
    """A plausible GenrePrediction with `top` most likely overall and in most windows."""

    def probabilities(leader: str) -> dict[str, float]:
        return {g: (0.81 if g == leader else 0.02 + 0.01 * i) for i, g in enumerate(GENRES)}

    segments = []
    start = 0.0
    while start < seconds:
        end = min(start + 5.0, seconds)
        leader = "blues" if len(segments) == 1 else top  # one change of genre over time
        segments.append(
            GenreSegment(start=start, end=end, top=leader, genres=probabilities(leader))
        )
        start = end
    return GenrePrediction(
        genres=probabilities(top), top=top, segments=tuple(segments), warnings=warnings
    )


@pytest.fixture
def app(studio_home: Path) -> AppTest:
    """The whole app (navigation, sidebar, pages), not yet run, on an empty studio folder."""
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


@pytest.fixture
def stub_classifier(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[tuple[bytes, str]]]:
    """Replace ui.models.classify_bytes; returns the list of (bytes, name) it was called with.

    Call as stub_classifier(prediction) or stub_classifier(raises=SomeEngineError("...")).
    """
    from ui import models

    def install(
        prediction: GenrePrediction | None = None, *, raises: Exception | None = None
    ) -> list[tuple[bytes, str]]:
        calls: list[tuple[bytes, str]] = []

        def classify_bytes(data: bytes, name: str) -> GenrePrediction:
            calls.append((data, name))
            if raises is not None:
                raise raises
            return prediction or fake_prediction()

        monkeypatch.setattr(models, "classify_bytes", classify_bytes)
        return calls

    return install


def generated_track(style: str = "folk", seed: int = 3, *, audio: bool = True) -> GeneratedTrack:
    """A small GeneratedTrack (a two-second arpeggio) as the Generate page keeps it."""
    from engine.audio import SAMPLE_RATE, encode_wav
    from engine.midi import piano_roll
    from tests.helpers import arpeggio_piece, midi_bytes

    midi = midi_bytes(arpeggio_piece())
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    wav = encode_wav(0.3 * np.sin(2 * np.pi * 262.0 * t), SAMPLE_RATE) if audio else None
    return GeneratedTrack(
        title=f"{style}, seed {seed}",
        style=style,
        midi=midi,
        wav=wav,
        piano_roll=piano_roll(midi),
        seed=seed,
        tempo=120.0,
        seconds=2.0,
        prompt_seconds=0.0,
    )


def fake_moods(top: str = "joy", warnings: tuple[str, ...] = ()) -> MoodPrediction:
    """A plausible crowd MoodPrediction with `top` the likeliest tag, in quadrant Q1."""
    from engine.mood import MOOD_TAGS

    tags = {t: (0.82 if t == top else 0.1 + 0.02 * i) for i, t in enumerate(MOOD_TAGS)}
    ranked = tuple(sorted(MOOD_TAGS, key=lambda t: -tags[t])[:3])
    quadrants = {"Q1": 0.6, "Q2": 0.1, "Q3": 0.1, "Q4": 0.2}
    return MoodPrediction(
        tags=tags,
        valence=0.6,
        arousal=0.4,
        quadrant="Q1",
        quadrants=quadrants,
        top_tags=ranked,
        segments=(),
        warnings=warnings,
    )


@pytest.fixture
def studio_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty studio data folder for this test (the app's cached library reopened on it)."""
    from engine.library import HOME_ENV
    from ui import models

    home = tmp_path / "studio"
    monkeypatch.setenv(HOME_ENV, str(home))
    models.library.clear()
    models._calibrations.clear()
    yield home
    models.library.clear()
    models._calibrations.clear()


@pytest.fixture
def stub_moods(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[tuple[bytes, str]]]:
    """Replace ui.models.moods_bytes; returns the list of (bytes, name) it was called with."""
    from ui import models

    def install(
        prediction: MoodPrediction | None = None, *, raises: Exception | None = None
    ) -> list[tuple[bytes, str]]:
        calls: list[tuple[bytes, str]] = []

        def moods_bytes(data: bytes, name: str) -> MoodPrediction:
            calls.append((data, name))
            if raises is not None:
                raise raises
            return prediction or fake_moods()

        monkeypatch.setattr(models, "moods_bytes", moods_bytes)
        return calls

    return install


def fake_description(seed: int = 0, *, genre: str = "classical") -> TrackDescription:
    """A TrackDescription as the library stores it: random unit segments, `genre` on top."""
    from engine.retrieval import CODE_BYTES, Segments
    from engine.similar import TrackDescription

    rng = np.random.default_rng(seed)
    embeddings = rng.standard_normal((3, 128)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return TrackDescription(
        genres={g: (0.9 if g == genre else 0.05) for g in GENRES},
        moods={"joy": 0.7, "calm": 0.4},
        segments=Segments(
            starts=np.arange(3) * 3.0,
            embeddings=embeddings,
            codes=rng.integers(0, 256, (3, CODE_BYTES), dtype=np.uint8),
        ),
    )
