"""Shared fixtures: a seeded RNG and synthesised audio in every format the studio reads.

Tests make their own audio; none needs /work/shared or a network.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SEED = 1234
# Extension -> (libsndfile format, subtype); see soundfile.available_subtypes(format).
FORMATS: dict[str, tuple[str, str]] = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "opus": ("OGG", "OPUS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}
OPUS_RATES = (8_000, 12_000, 16_000, 24_000, 48_000)  # the only rates Opus encodes

ToneMaker = Callable[..., np.ndarray]
Encoder = Callable[..., bytes]


@pytest.fixture(autouse=True, scope="session")
def no_first_run_demo() -> Iterator[None]:
    """No app a test starts builds the demo library in the background (minutes of work); the
    tests of that build pass their own command."""
    from engine.demo import FIRST_RUN_ENV

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(FIRST_RUN_ENV, "0")
        yield


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded generator per test: results do not depend on test order."""
    return np.random.default_rng(SEED)


@pytest.fixture
def make_tone(rng: np.random.Generator) -> ToneMaker:
    """Synthesise a sine tone with a little noise, shape (frames, channels), float32.

    Call as make_tone(seconds=1.0, sample_rate=22_050, frequency=440.0, channels=1,
    amplitude=0.5, noise=0.01).
    """

    def make(
        seconds: float = 1.0,
        sample_rate: int = 22_050,
        frequency: float = 440.0,
        channels: int = 1,
        amplitude: float = 0.5,
        noise: float = 0.01,
    ) -> np.ndarray:
        t = np.arange(int(round(seconds * sample_rate))) / sample_rate
        wave = amplitude * np.sin(2 * np.pi * frequency * t)
        frames = np.repeat(wave[:, None], channels, axis=1)
        frames = frames + noise * rng.standard_normal(frames.shape)
        return frames.astype(np.float32)

    return make


def encode_audio(
    samples: np.ndarray, sample_rate: int, extension: str = "wav", subtype: str | None = None
) -> bytes:
    """The bytes of `samples` written as an audio file of the given extension (see FORMATS)."""
    fmt, default_subtype = FORMATS[extension]
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate, format=fmt, subtype=subtype or default_subtype)
    return buffer.getvalue()


@pytest.fixture
def encode() -> Encoder:
    """encode(samples, sample_rate, extension="wav", subtype=None) -> file bytes."""
    return encode_audio


@pytest.fixture
def tone_file(make_tone: ToneMaker, tmp_path: Path) -> Callable[..., Path]:
    """Write a tone to tmp_path as `name` (format from its extension); returns the path.

    Call as tone_file("a.flac", seconds=2.0, sample_rate=44_100, channels=2).
    """

    def write(name: str, **tone: float) -> Path:
        extension = Path(name).suffix.lstrip(".").lower()
        rate = int(tone.pop("sample_rate", 48_000 if extension == "opus" else 22_050))
        path = tmp_path / name
        path.write_bytes(encode_audio(make_tone(sample_rate=rate, **tone), rate, extension))
        return path

    return write


@pytest.fixture
def wav_bytes(make_tone: ToneMaker) -> bytes:
    """Four seconds of a 440 Hz tone as a 16-bit mono WAV at 22,050 Hz."""
    return encode_audio(make_tone(seconds=4.0), 22_050, "wav")
