"""engine.features: shapes, units and the patches the encoder reads."""

from __future__ import annotations

import numpy as np
import pytest

from engine.audio import SAMPLE_RATE
from engine.features import (
    ENCODER_HOP,
    ENCODER_RATE,
    chroma,
    cut_patches,
    encoder_hpss_log_mel,
    encoder_log_mel,
    log_mel_db,
    mfcc_statistics,
)


def test_encoder_log_mel_has_one_frame_per_hop(make_tone) -> None:
    tone = make_tone(seconds=3.0)[:, 0]
    values = encoder_log_mel(tone)
    assert values.shape == (96, 1 + 3 * ENCODER_RATE // ENCODER_HOP)
    assert values.dtype == np.float32 and np.isfinite(values).all()


def test_a_tone_lights_up_its_own_mel_band(make_tone) -> None:
    low = encoder_log_mel(make_tone(seconds=1.0, frequency=200.0, noise=0.0)[:, 0])
    high = encoder_log_mel(make_tone(seconds=1.0, frequency=3000.0, noise=0.0)[:, 0])
    assert low.mean(axis=1).argmax() < high.mean(axis=1).argmax()


def test_torch_and_librosa_encoder_features_agree(make_tone) -> None:
    tone = make_tone(seconds=2.0)[:, 0]
    torch_values = encoder_log_mel(tone)
    librosa_values = encoder_log_mel(tone, backend="librosa")
    assert torch_values.shape == librosa_values.shape
    assert np.median(np.abs(torch_values - librosa_values)) < 0.05


def test_hpss_channels_separate_a_tone_from_clicks(make_tone) -> None:
    tone = make_tone(seconds=2.0, noise=0.0)[:, 0]
    clicks = np.zeros_like(tone)
    clicks[:: SAMPLE_RATE // 4] = 1.0
    mix, harmonic, percussive = encoder_hpss_log_mel(tone + clicks)
    assert harmonic.sum() > percussive.sum()  # the steady tone dominates the harmonic part
    assert np.isfinite(mix).all()


@pytest.mark.parametrize(("frames", "expected"), [(50, 1), (187, 1), (400, 3)])
def test_cut_patches_covers_the_clip(frames: int, expected: int) -> None:
    values = np.arange(96 * frames, dtype=np.float32).reshape(1, 96, frames)
    patches, starts = cut_patches(values, patch_frames=187, hop_frames=156)
    assert patches.shape == (expected, 1, 96, 187)
    assert starts[0] == 0
    assert starts[-1] + 187 >= min(frames, 187)


def test_short_clips_are_repeat_padded() -> None:
    values = np.tile(np.arange(10, dtype=np.float32), (96, 1))[None]
    patches, _ = cut_patches(values, patch_frames=25, hop_frames=25)
    np.testing.assert_array_equal(patches[0, 0, 0], np.tile(np.arange(10), 3)[:25])


def test_display_and_baseline_features(make_tone) -> None:
    tone = make_tone(seconds=2.0)[:, 0]
    db = log_mel_db(tone)
    assert db.max() == pytest.approx(0.0) and db.min() >= -80.0
    assert mfcc_statistics(tone).shape == (120,)
    assert chroma(tone).shape[0] == 12
