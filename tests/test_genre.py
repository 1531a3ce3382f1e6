"""engine.genre and the encoder: a tiny random model, real code paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.audio import SAMPLE_RATE, from_array
from engine.errors import ModelUnavailable
from engine.genre import (
    GENRES,
    SEGMENT_SECONDS,
    GenreClassifier,
    analyse,
    classify,
    load_classifier,
)
from engine.models.encoder import EncoderConfig, StudioEncoder

TINY = EncoderConfig(trunk="cnn", cnn_width=4, embedding_dim=16)


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> Path:
    """A randomly initialised, tiny genre encoder saved as a checkpoint."""
    torch.manual_seed(0)
    path = tmp_path / "genre.pt"
    StudioEncoder(TINY).save(path, labels={"genre": list(GENRES)}, metrics={"note": "tiny"})
    return path


def test_checkpoint_round_trip_gives_identical_outputs(tiny_checkpoint: Path) -> None:
    torch.manual_seed(0)
    original = StudioEncoder(TINY).eval()
    restored, labels, metrics = StudioEncoder.from_checkpoint(tiny_checkpoint)
    patches = torch.randn(3, 1, 96, 187)
    with torch.inference_mode():
        expected, _ = original(patches)
        got, logits = restored(patches)
    assert labels["genre"] == list(GENRES)
    assert metrics == {"note": "tiny"}
    assert logits["genre"].shape == (3, len(GENRES))
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("seconds", [0.5, 12.0, 31.0])
def test_classify_covers_the_clip_with_five_second_windows(
    tiny_checkpoint: Path, make_tone, seconds: float
) -> None:
    clip = from_array(make_tone(seconds=seconds)[:, 0], SAMPLE_RATE, name="tone.wav")
    prediction = classify(clip, load_classifier(tiny_checkpoint))
    assert set(prediction.genres) == set(GENRES)
    assert all(0.0 <= p <= 1.0 for p in prediction.genres.values())
    assert prediction.top == max(prediction.genres, key=prediction.genres.get)
    assert prediction.segments[0].start == 0.0
    assert prediction.segments[-1].end == pytest.approx(seconds, abs=0.01)
    assert len(prediction.segments) == max(1, round(seconds / SEGMENT_SECONDS))
    for before, after in zip(prediction.segments, prediction.segments[1:], strict=False):
        assert before.end == pytest.approx(after.start)


class LoudnessEncoder(torch.nn.Module):
    """Stand-in encoder: 'blues' scores high on loud patches, 'classical' on quiet ones."""

    config = TINY

    def forward(self, patches: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        level = patches.mean(dim=(1, 2, 3))[:, None] - 1.0
        logits = torch.zeros(len(patches), len(GENRES))
        logits[:, GENRES.index("blues")] = 10 * level[:, 0]
        logits[:, GENRES.index("classical")] = -10 * level[:, 0]
        return level, {"genre": logits}


def test_windows_follow_the_music(rng: np.random.Generator) -> None:
    """Ten quiet seconds, then ten loud: the windows must say so, in order."""
    half = 10 * SAMPLE_RATE
    samples = np.concatenate([0.001 * rng.standard_normal(half), 0.5 * rng.standard_normal(half)])
    classifier = GenreClassifier(LoudnessEncoder(), GENRES, torch.device("cpu"))
    prediction = classify(from_array(samples, SAMPLE_RATE), classifier)
    assert [s.top for s in prediction.segments] == ["classical"] * 2 + ["blues"] * 2


def test_silence_is_classified_with_a_warning(tiny_checkpoint: Path) -> None:
    clip = from_array(np.zeros(SAMPLE_RATE * 3, dtype=np.float32), SAMPLE_RATE, name="quiet.wav")
    prediction = classify(clip, load_classifier(tiny_checkpoint))
    assert any("silent" in warning for warning in prediction.warnings)


def test_a_quiet_recording_reads_as_the_same_music(make_tone) -> None:
    """20 and 40 dB below released music, a clip is read at the floor of its level: the same."""
    classifier = GenreClassifier(LoudnessEncoder(), GENRES, torch.device("cpu"))
    tone = make_tone(seconds=6.0, amplitude=0.5)[:, 0]
    quiet, quieter = (from_array(gain * tone, SAMPLE_RATE) for gain in (0.1, 0.01))
    levelled = [analyse(clip, classifier).logits["genre"] for clip in (quiet, quieter)]
    as_is = [analyse(clip, classifier, levelled=False).logits["genre"] for clip in (quiet, quieter)]
    np.testing.assert_allclose(levelled[0], levelled[1], atol=1e-4)
    assert np.abs(as_is[0] - as_is[1]).max() > 1.0  # read as they are, they differ


def test_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="missing"):
        load_classifier(tmp_path / "nothing.pt")


def test_unreadable_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelUnavailable, match="could not be read"):
        load_classifier(path)
