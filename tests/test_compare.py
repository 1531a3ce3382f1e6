"""Tests of engine.compare and `python -m engine compare`, on tones and MIDI made here."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from engine import audio, compare, features
from engine.errors import InvalidMidi, InvalidSettings, MissingFile, UnsupportedFormat
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


# Pitch classes and chroma


def test_pitch_classes_from_notes_count_sounding_time_without_drums() -> None:
    shares = compare.pitch_classes_from_notes(midi_bytes(arpeggio_piece()))  # C E G C, equal
    assert shares is not None and shares.from_notes and shares.source == "MIDI notes"
    expected = np.zeros(12)
    expected[[0, 4, 7]] = [0.5, 0.25, 0.25]
    np.testing.assert_allclose(shares.shares, expected)
    first_second = compare.pitch_classes_from_notes(midi_bytes(arpeggio_piece()), seconds=1.0)
    np.testing.assert_allclose(first_second.shares[[0, 4]], [0.5, 0.5])  # C, E; G starts at 1 s
    drums_only = arpeggio_piece()
    del drums_only.instruments[0]
    assert compare.pitch_classes_from_notes(midi_bytes(drums_only)) is None


def test_pitch_classes_from_chroma_find_the_tone(tone: Callable[..., audio.Clip]) -> None:
    chromagram = features.chroma(tone(440.0).samples)
    assert chromagram.shape[0] == 12 and chromagram.max() == pytest.approx(1.0)
    shares = compare.pitch_classes_from_chroma(chromagram)
    assert not shares.from_notes and shares.source == "audio chroma"
    assert compare.PITCH_CLASS_NAMES[int(shares.shares.argmax())] == "A"
    assert shares.shares.sum() == pytest.approx(1.0)
    silent = compare.pitch_classes_from_chroma(np.zeros((12, 5), dtype=np.float32))
    assert not silent.shares.any()


def test_comparison_carries_chroma_and_pitch_classes(tone: Callable[..., audio.Clip]) -> None:
    midi = midi_bytes(arpeggio_piece())
    result = compare.compare(tone(440.0, seconds=2.0), tone(261.6, seconds=2.0), b_midi=midi)
    assert result.a_chroma.shape == result.b_chroma.shape == (12, result.a_db.shape[1])
    assert not result.a_pitch_classes.from_notes
    assert compare.PITCH_CLASS_NAMES[int(result.a_pitch_classes.shares.argmax())] == "A"
    assert result.b_pitch_classes.from_notes  # counted from the notes, not the tone's chroma
    assert result.b_pitch_classes.shares[0] == pytest.approx(0.5)


# Sets: the Frechet distance


def test_frechet_distance_of_identical_sets_is_zero() -> None:
    rng = np.random.default_rng(0)
    for n, dim in ((50, 8), (6, 32)):  # full-rank and rank-deficient covariances
        embeddings = rng.normal(size=(n, dim)) * rng.uniform(0.1, 3.0, size=dim)
        assert compare.frechet_distance(embeddings, embeddings) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_of_shifted_sets_is_the_squared_shift() -> None:
    rng = np.random.default_rng(1)
    shift = np.array([3.0, -4.0] + [0.0] * 30)  # 25 = 3^2 + 4^2
    for n in (100, 5):  # 5 embeddings in 32 dimensions: a singular covariance
        embeddings = rng.normal(size=(n, 32))
        distance = compare.frechet_distance(embeddings, embeddings + shift)
        assert distance == pytest.approx(25.0, abs=1e-6)


def test_frechet_distance_matches_the_closed_form() -> None:
    from scipy.linalg import sqrtm

    rng = np.random.default_rng(2)
    a = rng.normal(size=(400, 4)) @ rng.normal(size=(4, 4))
    b = rng.normal(size=(300, 4)) @ rng.normal(size=(4, 4)) + 1.0
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(
        cov_a + cov_b - 2 * np.real(sqrtm(cov_a @ cov_b))
    )
    assert compare.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert compare.frechet_distance(b, a) == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_refuses_too_few_or_mismatched_embeddings() -> None:
    with pytest.raises(InvalidSettings, match="at least 2 embeddings.*first set has 1"):
        compare.frechet_distance(np.ones((1, 4)), np.ones((5, 4)))
    with pytest.raises(InvalidSettings, match="second set has 0"):
        compare.frechet_distance(np.ones((3, 4)), np.ones(4))
    with pytest.raises(InvalidSettings, match="differ in size"):
        compare.frechet_distance(np.ones((3, 4)), np.ones((3, 5)))
    with pytest.raises(InvalidSettings, match="non-finite"):
        compare.frechet_distance(np.full((3, 4), np.nan), np.ones((3, 4)))


@needs_fluidsynth
def test_compare_sets_a_set_like_the_real_one_is_closer(
    monkeypatch: pytest.MonkeyPatch, tiny_checkpoint: Path
) -> None:
    import engine.generate

    real = [midi_bytes(arpeggio_piece(tuple(p + k for p in (60, 64, 67, 72)))) for k in range(3)]
    drums = arpeggio_piece()
    del drums.instruments[0]
    other = midi_bytes(drums)

    def fake_generate(settings, model, **kwargs):  # "ours" replays the real pieces
        assert settings.style == "folk" and settings.seconds == 2.0 and not kwargs["render"]
        return SimpleNamespace(midi=real[settings.seed - 7] if model == "ours" else other)

    monkeypatch.setattr(engine.generate, "generate", fake_generate)
    calls: list[tuple[float, str]] = []
    result = compare.compare_sets(
        "Folk", "ours", "markov", load_classifier(tiny_checkpoint), pieces=3, seconds=2.0,
        seed=7, real=real, reference=real[::-1], progress=lambda f, m: calls.append((f, m)),
    )  # fmt: skip
    assert result.style == "folk" and result.pieces == 3
    assert result.ours < 0.2 * result.markov
    assert result.reference == pytest.approx(result.ours, abs=0.2 * result.markov)
    assert set(result.embeddings) == {"ours", "markov", "real", "reference"}
    assert all(count >= 3 for count in result.embeddings.values())
    assert len(calls) == 12 and calls[-1][0] == pytest.approx(1.0)
    assert [f for f, _ in calls] == sorted(f for f, _ in calls)
    assert calls[0][1] == "Ours: piece 1 of 3"


def test_compare_sets_refuses_too_few_pieces(tiny_checkpoint: Path) -> None:
    classifier = load_classifier(tiny_checkpoint)
    with pytest.raises(InvalidSettings, match="at least 2 pieces"):
        compare.compare_sets("folk", "ours", "markov", classifier, pieces=1, real=[b"x"] * 3)
    with pytest.raises(InvalidSettings, match="Only 1 real pieces of 'folk'.*at most 1"):
        compare.compare_sets("folk", "ours", "markov", classifier, pieces=2, real=[b"x"])
    with pytest.raises(InvalidSettings, match="Only 0 reference"):
        compare.compare_sets(
            "folk", "ours", "markov", classifier, pieces=2, real=[b"x"] * 2, reference=[]
        )


def test_silent_frames_have_no_chroma(tone: Callable[..., audio.Clip]) -> None:
    sound = tone(440.0, seconds=1.0).samples
    with_silence = np.concatenate([sound, np.zeros_like(sound)])
    clip = audio.from_array(with_silence, RATE, name="tone then silence")
    result = compare.compare(clip, clip)
    tail = result.frame_seconds > 1.2
    assert not result.a_chroma[:, tail].any()
    assert result.a_chroma[:, result.frame_seconds < 0.8].max(axis=0).min() == pytest.approx(1.0)
    assert compare.PITCH_CLASS_NAMES[int(result.a_pitch_classes.shares.argmax())] == "A"
