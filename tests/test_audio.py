"""engine.audio.load: every format, from paths and bytes, and every user error path."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
import soundfile as sf

from engine import audio
from engine.errors import (
    CorruptAudio,
    EmptyFile,
    InvalidAudio,
    NonFiniteSamples,
    NoSamples,
    UnsupportedFormat,
)
from tests.conftest import FORMATS, encode_audio

RATE = audio.SAMPLE_RATE


def dominant_frequency(samples: np.ndarray, sample_rate: int) -> float:
    """The frequency of the strongest FFT bin, in Hz."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / sample_rate)[spectrum.argmax()])


def test_formats_under_test_are_writable() -> None:
    for fmt, subtype in FORMATS.values():
        assert subtype in sf.available_subtypes(fmt), (fmt, subtype)


@pytest.mark.parametrize("extension", sorted(FORMATS))
def test_load_each_format_from_path(tone_file, extension: str) -> None:
    path = tone_file(f"tone.{extension}", seconds=2.0, frequency=440.0)

    clip = audio.load(path)

    assert clip.name == f"tone.{extension}"
    assert clip.sample_rate == RATE
    assert clip.samples.dtype == np.float32
    assert clip.samples.ndim == 1
    assert clip.duration == pytest.approx(2.0, abs=0.1)  # codecs pad or trim a few ms
    assert dominant_frequency(clip.samples, RATE) == pytest.approx(440.0, abs=5.0)
    assert clip.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert clip.warnings == ()


@pytest.mark.parametrize("extension", sorted(FORMATS))
def test_load_each_format_from_bytes(tone_file, extension: str) -> None:
    data = tone_file(f"tone.{extension}", seconds=1.5).read_bytes()

    unnamed = audio.load(data)
    named = audio.load(data, name="upload.bin")

    assert unnamed.name == "clip"
    assert named.name == "upload.bin"
    assert unnamed.samples.dtype == np.float32 and unnamed.samples.ndim == 1
    assert unnamed.duration == pytest.approx(1.5, abs=0.1)
    np.testing.assert_array_equal(unnamed.samples, named.samples)


def test_lossless_wav_samples_survive(make_tone, encode) -> None:
    tone = make_tone(seconds=1.0)
    clip = audio.load(encode(tone, RATE, "wav", subtype="FLOAT"))
    np.testing.assert_allclose(clip.samples, tone[:, 0], atol=1e-6)


def test_stereo_is_averaged_to_mono(make_tone, encode) -> None:
    left = make_tone(seconds=1.0, frequency=330.0, noise=0.0)[:, 0]
    right = make_tone(seconds=1.0, frequency=550.0, amplitude=0.25, noise=0.0)[:, 0]

    clip = audio.load(encode(np.stack([left, right], axis=1), RATE, "wav", subtype="FLOAT"))

    assert clip.samples.ndim == 1
    np.testing.assert_allclose(clip.samples, (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize("source_rate", [44_100, 16_000])
def test_resampled_to_studio_rate(make_tone, encode, source_rate: int) -> None:
    tone = make_tone(seconds=2.0, sample_rate=source_rate, frequency=1000.0)

    clip = audio.load(encode(tone, source_rate, "wav"))

    assert clip.sample_rate == RATE
    assert len(clip.samples) == pytest.approx(2.0 * RATE, abs=2)
    assert dominant_frequency(clip.samples, RATE) == pytest.approx(1000.0, abs=2.0)
    assert np.abs(clip.samples).max() == pytest.approx(0.5, abs=0.05)


def test_longer_than_ten_minutes_is_cut_with_warning(encode) -> None:
    rate = 1_000  # a low rate keeps ten minutes small (1.2 MB) and fast
    seconds = audio.MAX_SECONDS + 5
    t = np.arange(int(seconds * rate)) / rate
    data = encode((0.3 * np.sin(2 * np.pi * 100 * t)).astype(np.float32), rate, "wav")

    clip = audio.load(data, name="long.wav")

    assert clip.duration == pytest.approx(audio.MAX_SECONDS, abs=0.01)
    assert len(clip.warnings) == 1
    assert "long.wav" in clip.warnings[0] and "10 minutes" in clip.warnings[0]


def test_exactly_ten_minutes_is_not_cut(encode) -> None:
    rate = 1_000
    data = encode(np.full(int(audio.MAX_SECONDS * rate), 0.1, np.float32), rate, "wav")
    assert audio.load(data).warnings == ()


def test_silence_is_a_warning_not_an_error(encode) -> None:
    clip = audio.load(encode(np.zeros(RATE, np.float32), RATE, "wav"), name="quiet.wav")

    assert clip.duration == pytest.approx(1.0)
    assert len(clip.warnings) == 1
    assert "silent" in clip.warnings[0]


def test_released_music_is_read_at_its_own_level(make_tone) -> None:
    samples = make_tone(seconds=2.0, amplitude=0.1)[:, 0]  # -23 dB RMS: inside the range
    assert audio.released_level(samples) is samples


@pytest.mark.parametrize(("gain", "bound"), [(0.01, 0), (0.001, 0), (4.0, 1)])
def test_quiet_and_loud_clips_are_brought_to_released_music(make_tone, gain, bound) -> None:
    samples = gain * make_tone(seconds=2.0, amplitude=0.5)[:, 0]
    levelled = audio.released_level(samples)
    assert levelled.dtype == np.float32
    assert audio.rms_db(levelled) == pytest.approx(audio.RELEASED_RMS_DB[bound], abs=0.01)
    np.testing.assert_allclose(levelled / levelled.max(), samples / samples.max(), atol=1e-6)


def test_silence_is_not_raised() -> None:
    samples = np.full(RATE, audio.SILENCE_PEAK / 2, np.float32)
    assert audio.released_level(samples) is samples
    assert audio.rms_db(np.zeros(RATE, np.float32)) == -np.inf


# --- every user error is an InvalidAudio subclass with a message a person can act on ---------


def assert_readable(error: pytest.ExceptionInfo[InvalidAudio], name: str) -> None:
    message = str(error.value)
    assert name in message
    assert "Traceback" not in message and "<_io." not in message


def test_empty_file(tmp_path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(EmptyFile) as error:
        audio.load(path)
    assert_readable(error, "empty.wav")
    with pytest.raises(EmptyFile):
        audio.load(b"")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"just some text, not audio\n" * 40, id="text"),
        pytest.param(np.random.default_rng(7).bytes(8_000), id="random-bytes"),
        pytest.param(b"%PDF-1.7\n" + bytes(2_000), id="pdf"),
    ],
)
def test_not_audio_is_unsupported_format(data: bytes) -> None:
    with pytest.raises(UnsupportedFormat) as error:
        audio.load(data, name="notes.txt")
    assert_readable(error, "notes.txt")
    assert audio.SUPPORTED_FORMATS in str(error.value)


def test_missing_path_is_reported(tmp_path) -> None:
    with pytest.raises(InvalidAudio) as error:
        audio.load(tmp_path / "nowhere.wav")
    assert "nowhere.wav" in str(error.value)


@pytest.mark.parametrize("keep", [0.9, 0.5, 0.1])
def test_truncated_wav_is_corrupt(make_tone, encode, keep: float) -> None:
    data = encode(make_tone(seconds=2.0), RATE, "wav")
    with pytest.raises(CorruptAudio) as error:
        audio.load(data[: int(len(data) * keep)], name="cut.wav")
    assert_readable(error, "cut.wav")


@pytest.mark.parametrize("keep", [0.5, 0.2])
def test_truncated_flac_is_corrupt(make_tone, encode, keep: float) -> None:
    data = encode(make_tone(seconds=2.0), RATE, "flac")
    with pytest.raises(CorruptAudio) as error:
        audio.load(data[: int(len(data) * keep)], name="cut.flac")
    assert_readable(error, "cut.flac")


@pytest.mark.parametrize("keep", [0.5, 0.1])
def test_truncated_mp3_is_corrupt(make_tone, encode, keep: float) -> None:
    # The encoder's Xing header declares the length, so a cut is detectable.
    data = encode(make_tone(seconds=10.0), RATE, "mp3")
    with pytest.raises(CorruptAudio) as error:
        audio.load(data[: int(len(data) * keep)], name="cut.mp3")
    assert_readable(error, "cut.mp3")


def test_mp3_cut_to_its_header_has_a_readable_message(make_tone, encode) -> None:
    data = encode(make_tone(seconds=10.0), RATE, "mp3")
    with pytest.raises(CorruptAudio) as error:
        audio.load(data[:300], name="cut.mp3")
    assert_readable(error, "cut.mp3")


@pytest.mark.parametrize("extension", ["ogg", "opus"])
def test_ogg_cut_mid_stream_keeps_what_is_there(make_tone, encode, extension: str) -> None:
    # Ogg declares no length up front, so audio cut between pages decodes up to the cut
    # (like a stream that stopped); that is legitimate, not corruption.
    rate = 48_000 if extension == "opus" else RATE
    data = encode(make_tone(seconds=10.0, sample_rate=rate), rate, extension)

    clip = audio.load(data[: len(data) // 2])

    assert 3.0 < clip.duration < 7.0


@pytest.mark.parametrize("extension", ["ogg", "opus"])
@pytest.mark.parametrize("keep_bytes", [200, 3_000, 5_000])
def test_ogg_cut_inside_its_headers_is_corrupt(make_tone, encode, extension, keep_bytes) -> None:
    rate = 48_000 if extension == "opus" else RATE
    data = encode(make_tone(seconds=10.0, sample_rate=rate), rate, extension)
    with pytest.raises(CorruptAudio):
        audio.load(data[:keep_bytes], name=f"cut.{extension}")


def test_zero_sample_wav_has_no_samples(encode) -> None:
    data = encode(np.zeros((0, 1), np.float32), RATE, "wav")
    with pytest.raises(NoSamples) as error:
        audio.load(data, name="nothing.wav")
    assert_readable(error, "nothing.wav")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_float_wav(make_tone, encode, bad: float) -> None:
    samples = make_tone(seconds=0.5)
    samples[100, 0] = bad
    with pytest.raises(NonFiniteSamples) as error:
        audio.load(encode(samples, RATE, "wav", subtype="FLOAT"), name="nan.wav")
    assert_readable(error, "nan.wav")


def test_from_array_wraps_samples(make_tone) -> None:
    tone = make_tone(seconds=1.0, sample_rate=44_100)[:, 0]
    clip = audio.from_array(tone, 44_100, name="render")
    assert clip.name == "render"
    assert clip.sample_rate == RATE
    assert clip.duration == pytest.approx(1.0, abs=1e-3)


def test_encode_helper_round_trips() -> None:
    # Guards the fixtures themselves: a mistake there would make every test above vacuous.
    samples = np.linspace(-0.5, 0.5, 1000, dtype=np.float32)
    data = encode_audio(samples, RATE, "wav", subtype="FLOAT")
    decoded, rate = sf.read(io.BytesIO(data), dtype="float32")
    assert rate == RATE
    np.testing.assert_array_equal(decoded, samples)


def test_mp3_cut_near_its_end_decodes_with_a_warning(make_tone, encode) -> None:
    data = encode(make_tone(seconds=10.0), RATE, "mp3")
    clip = audio.load(data[: int(len(data) * 0.9)], name="cut.mp3")
    assert 8.0 < clip.duration < 9.5
    assert any("truncated" in warning for warning in clip.warnings)
    assert not audio.load(data, name="whole.mp3").warnings
