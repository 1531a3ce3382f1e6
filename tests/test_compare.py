"""Tests of engine.compare and `python -m engine compare`, on tones and MIDI made here."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from engine import audio, compare
from engine.errors import InvalidMidi, MissingFile, UnsupportedFormat
from engine.genre import CHECKPOINT_ENV, load_classifier
from tests.conftest import ToneMaker
from tests.helpers import (
    arpeggio_piece,
    midi_bytes,
    needs_fluidsynth,
    run_engine,
    save_tiny_encoder,
)

RATE = audio.SAMPLE_RATE


@pytest.fixture
def tone(make_tone: ToneMaker) -> Callable[..., audio.Clip]:
    """A mono clip of a sine tone: tone(frequency=440.0, seconds=3.0, amplitude=0.5)."""

    def make(frequency: float = 440.0, seconds: float = 3.0, amplitude: float = 0.5) -> audio.Clip:
        samples = make_tone(seconds=seconds, frequency=frequency, amplitude=amplitude, noise=0.0)
        samples = samples[:, 0]
        return audio.from_array(samples, RATE, name=f"{frequency:g} Hz")

    return make


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_encoder(tmp_path_factory.mktemp("model") / "genre.pt")


def test_distance_functions_on_hand_made_values() -> None:
    a = np.zeros((2, 3))
    b = np.array([[3.0, 0.0, 0.0], [4.0, 0.0, 0.0]])
    # frame 0: sqrt((9 + 16) / 2) = sqrt(12.5); frames 1, 2: 0 -> mean sqrt(12.5) / 3
    assert compare.log_spectral_distance(a, b) == pytest.approx(np.sqrt(12.5) / 3)
    assert compare.spectral_convergence(b, a) == pytest.approx(1.0)
    assert compare.spectral_convergence(b, b / 2) == pytest.approx(0.5)
    assert compare.cosine(np.array([1.0, 0.0]), np.array([1.0, 1.0])) == pytest.approx(
        1 / np.sqrt(2)
    )
    assert compare.cosine(np.zeros(3), np.ones(3)) == 0.0


def test_a_clip_against_itself_is_identical(tone: Callable[..., audio.Clip]) -> None:
    clip = tone()
    result = compare.compare(clip, clip)
    assert result.log_spectral_distance == pytest.approx(0.0, abs=1e-6)
    assert result.spectral_convergence == pytest.approx(0.0, abs=1e-6)
    assert result.chroma_similarity == pytest.approx(1.0, abs=1e-6)
    assert result.embedding_cosine is None
    assert result.a_db.shape == result.b_db.shape == result.difference_db.shape
    assert np.abs(result.difference_db).max() < 1e-4
    assert result.a_db.shape[1] == len(result.frame_seconds)
    assert result.a_db.shape[0] == len(result.band_hz)


def test_loudness_does_not_count(tone: Callable[..., audio.Clip]) -> None:
    result = compare.compare(tone(amplitude=0.5), tone(amplitude=0.05))
    assert result.log_spectral_distance < 1.0
    assert result.chroma_similarity > 0.99


def test_another_pitch_is_far(tone: Callable[..., audio.Clip]) -> None:
    near = compare.compare(tone(440.0), tone(440.0, amplitude=0.3))
    far = compare.compare(tone(440.0), tone(311.1))  # A against E-flat: a tritone away
    assert far.log_spectral_distance > near.log_spectral_distance + 5.0
    assert far.spectral_convergence > 0.5
    assert far.chroma_similarity < 0.6


def test_lengths_differ_compare_the_shorter_and_say_so(tone: Callable[..., audio.Clip]) -> None:
    result = compare.compare(tone(seconds=2.0), tone(seconds=5.0))
    assert result.seconds == pytest.approx(2.0, abs=0.01)
    assert any("first 2.0 s" in warning for warning in result.warnings)
    assert not compare.compare(tone(seconds=2.0), tone(seconds=2.5)).warnings


def test_embedding_cosine_with_a_model(
    tone: Callable[..., audio.Clip], tiny_checkpoint: Path
) -> None:
    classifier = load_classifier(tiny_checkpoint)
    same = compare.compare(tone(), tone(amplitude=0.49), classifier)
    assert same.embedding_cosine == pytest.approx(1.0, abs=1e-3)
    assert -1.0 <= compare.compare(tone(), tone(97.0), classifier).embedding_cosine <= 1.0


@needs_fluidsynth
def test_midi_is_rendered_and_compared(tmp_path: Path) -> None:
    path = tmp_path / "arpeggio.mid"
    path.write_bytes(midi_bytes(arpeggio_piece()))
    clip = compare.load_music(path)
    assert clip.name == "arpeggio.mid" and 2.5 < clip.duration < 3.5
    from_bytes = compare.load_music(path.read_bytes(), name="same")
    assert from_bytes.name == "same" and len(from_bytes.samples) == len(clip.samples)
    minor = compare.load_music(midi_bytes(arpeggio_piece((61, 64, 68, 73))))
    other = compare.compare(clip, minor)
    same = compare.compare(clip, from_bytes)  # renders differ a little (FluidSynth's chorus)
    assert same.log_spectral_distance < 0.25 * other.log_spectral_distance
    assert same.spectral_convergence < 0.1 < other.spectral_convergence


def test_bad_inputs_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(MissingFile):
        compare.load_music(tmp_path / "nowhere.ogg")
    text = tmp_path / "notes.txt"
    text.write_text("not music")
    with pytest.raises(UnsupportedFormat, match="MIDI"):
        compare.load_music(text)
    fake = tmp_path / "fake.mid"
    fake.write_bytes(b"RIFF but not a MIDI file")
    with pytest.raises(InvalidMidi, match="fake.mid"):
        compare.load_music(fake)
    empty_score = arpeggio_piece()
    empty_score.instruments.clear()
    with pytest.raises(InvalidMidi, match="no notes"):
        compare.load_music(midi_bytes(empty_score))


def test_cli_compare_json(tone_file: Callable[..., Path], tiny_checkpoint: Path) -> None:
    a = tone_file("a.wav", frequency=440.0, seconds=2.0)
    result = run_engine("compare", str(a), str(a), "--json",
                        env={CHECKPOINT_ENV: str(tiny_checkpoint)})  # fmt: skip
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["a"] == str(a) and record["b"] == str(a)
    assert record["log_spectral_distance"] == pytest.approx(0.0, abs=1e-3)
    assert record["chroma_similarity"] == pytest.approx(1.0, abs=1e-3)
    assert record["embedding_cosine"] == pytest.approx(1.0, abs=1e-3)
    assert set(record) >= {"seconds", "spectral_convergence", "warnings"}


def test_cli_compare_reports_each_bad_file(tmp_path: Path, tone_file: Callable[..., Path]) -> None:
    good = tone_file("good.wav", seconds=1.0)
    missing = tmp_path / "missing.ogg"
    result = run_engine("compare", str(missing), str(good), "--json")
    assert result.returncode == 1
    assert result.stderr.startswith(f"{missing}:") and "Traceback" not in result.stderr
    assert result.stdout == ""
