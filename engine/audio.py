"""The one place audio enters the studio: bytes or a path -> validated mono float32."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import (
    CorruptAudio,
    EmptyFile,
    MissingFile,
    NonFiniteSamples,
    NoSamples,
    UnsupportedFormat,
)

SAMPLE_RATE = 22_050  # Hz: the studio's one analysis rate
MAX_SECONDS = 600.0  # at most 10 minutes of a file are analysed
SILENCE_PEAK = 1e-4  # peak amplitude below which a clip counts as silent
# RMS range (dB re full scale) of released music: the 4Q MER clips' 5th-95th percentiles. The
# models were trained on music at this level; rendered training segments are set into it.
RELEASED_RMS_DB = (-24.0, -11.0)
SUPPORTED_FORMATS = "WAV, FLAC, OGG (Vorbis or Opus) and MP3"

AudioSource = str | Path | bytes


@dataclass(frozen=True)
class Clip:
    """Decoded, validated audio ready for analysis."""

    samples: np.ndarray  # mono float32 at `sample_rate`
    sample_rate: int  # always SAMPLE_RATE
    name: str  # file name, or "clip" for raw bytes
    sha256: str  # hash of the original bytes: the cache key of every analysis
    warnings: tuple[str, ...] = field(default=())  # things the listener should know

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate


def read_source(source: AudioSource, name: str | None = None) -> tuple[bytes, str]:
    """The bytes of a path or of bytes, and what to call them in messages (`name`, else the
    file name, else "clip").

    Raises:
        MissingFile: when no file exists at the path.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), name or "clip"
    path = Path(source)
    if not path.is_file():
        raise MissingFile(f"There is no file called {path.name} there; check the path.")
    return path.read_bytes(), name or path.name


def _looks_like_audio(data: bytes) -> bool:
    """True when the bytes start with the signature of a format the studio reads."""
    if data[:4] in (b"OggS", b"fLaC", b"ID3\x03", b"ID3\x04", b"ID3\x02"):
        return True
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return True
    return len(data) > 1 and data[0] == 0xFF and (data[1] & 0xE0) == 0xE0  # an MPEG frame


def _decode(data: bytes, name: str) -> tuple[np.ndarray, int, list[str]]:
    """Decode at most MAX_SECONDS.

    Returns:
        (frames x channels, sample rate, warnings)
    """
    import soundfile as sf

    damaged = CorruptAudio(
        f"{name} looks like audio but could not be decoded: the file is truncated or "
        "damaged. Try exporting or downloading it again."
    )
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            rate = f.samplerate
            limit = int(MAX_SECONDS * rate)
            frames = f.read(frames=limit, dtype="float32", always_2d=True)
            was_cut = len(frames) >= limit and f.tell() < f.frames
            declared = f.frames
            fmt = f.format
    except (sf.LibsndfileError, RuntimeError, ValueError, EOFError):
        if _looks_like_audio(data):
            raise damaged from None
        raise UnsupportedFormat(
            f"{name} is not audio the studio can read. Supported formats: {SUPPORTED_FORMATS}."
        ) from None
    if fmt == "WAV" and _wav_is_truncated(data):
        raise CorruptAudio(
            f"{name} is truncated: its header promises more audio than the file holds. "
            "Try exporting it again."
        )
    if len(frames) == 0 and fmt in ("OGG", "MP3") and len(data) > 0:
        raise damaged  # compressed audio with no audio frames was cut inside its headers
    expected = min(declared, limit)
    warnings = []
    if declared > 0 and len(frames) < expected * 0.5:
        raise CorruptAudio(f"{name} ended early: the file is truncated or damaged.")
    if declared > 0 and len(frames) < expected * 0.99:
        warnings.append(f"{name} ended earlier than its header says: it may be truncated.")
    if was_cut:
        warnings.append(
            f"{name} is longer than {MAX_SECONDS / 60:.0f} minutes: only the first "
            f"{MAX_SECONDS / 60:.0f} minutes were analysed."
        )
    return frames, rate, warnings


def _wav_is_truncated(data: bytes) -> bool:
    """True when a RIFF/WAVE data chunk declares more bytes than the file has."""
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if chunk_id == b"data":
            # 0 and 0xFFFFFFFF mark streamed WAVs of unknown length: not truncation.
            return size not in (0, 0xFFFFFFFF) and pos + 8 + size > len(data)
        pos += 8 + size + (size & 1)
    return False


def load(source: AudioSource, *, name: str | None = None) -> Clip:
    """Load audio as mono float32 at SAMPLE_RATE, validated.

    Args:
        source: a file path or the file's bytes.
        name: what to call the clip in messages (default: the file name, or "clip").

    Returns:
        The decoded clip, with warnings for silence or a file cut to MAX_SECONDS.

    Raises:
        InvalidAudio: (a subclass) for empty, unsupported, corrupt, sample-less or
            non-finite input.
    """
    data, name = read_source(source, name)
    if not data:
        raise EmptyFile(f"{name} is empty (0 bytes). Choose a file that holds audio.")
    frames, rate, warnings = _decode(data, name)
    if frames.size == 0:
        raise NoSamples(f"{name} holds no audio samples (its length is zero).")
    if not np.isfinite(frames).all():
        raise NonFiniteSamples(
            f"{name} holds invalid sample values (NaN or infinity); it cannot be analysed."
        )
    mono = frames.mean(axis=1)
    if rate != SAMPLE_RATE:
        import soxr

        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ")
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if float(np.abs(mono).max(initial=0.0)) < SILENCE_PEAK:
        warnings.append(f"{name} is silent: results on silence mean little.")
    return Clip(
        samples=mono,
        sample_rate=SAMPLE_RATE,
        name=name,
        sha256=hashlib.sha256(data).hexdigest(),
        warnings=tuple(warnings),
    )


def rms_db(samples: np.ndarray) -> float:
    """RMS level of `samples` in dB re full scale (-inf for digital silence)."""
    power = float(np.mean(np.square(samples, dtype=np.float64)))
    return 10.0 * np.log10(power) if power > 0.0 else -np.inf


def released_level(samples: np.ndarray) -> np.ndarray:
    """`samples` scaled into the RMS range of released music (`RELEASED_RMS_DB`): a quiet
    recording is raised to its floor, an over-loud one lowered to its ceiling, and music
    already inside it (or silence) is returned as it is.

    The models read what they were trained on: without this, the same song 20 dB quieter
    (a phone or microphone recording) reads as other music.
    """
    if float(np.abs(samples).max(initial=0.0)) < SILENCE_PEAK:
        return samples
    level = rms_db(samples)
    low, high = RELEASED_RMS_DB
    target = min(max(level, low), high)
    if target == level:
        return samples
    return (samples * np.float32(10.0 ** ((target - level) / 20.0))).astype(np.float32)


def from_array(samples: np.ndarray, sample_rate: int, name: str = "clip") -> Clip:
    """Wrap samples already in memory (a render, a recording) as a validated Clip.

    Raises:
        InvalidAudio: for empty or non-finite samples.
    """
    return load(encode_wav(samples, sample_rate, subtype="FLOAT"), name=name)


def encode_wav(samples: np.ndarray, sample_rate: int, *, subtype: str = "PCM_16") -> bytes:
    """Mono samples as the bytes of a WAV file (16-bit by default; "FLOAT" keeps every bit)."""
    import soundfile as sf

    buffer = io.BytesIO()
    mono = np.asarray(samples, dtype=np.float32)
    sf.write(buffer, mono, sample_rate, format="WAV", subtype=subtype)
    return buffer.getvalue()
