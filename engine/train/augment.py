"""Alterations a similar-track search must see through: pitch, tempo and noise.

The fourth, another soundfont, is a render (engine.train.dataset.render_again), not a filter.
Training (engine.train.retrieval) and the benchmark (bench/retrieval.py) use the same ones.
"""

from __future__ import annotations

import numpy as np

from engine.audio import SAMPLE_RATE

ALTERATIONS = ("pitch_up", "pitch_down", "tempo_up", "tempo_down", "noise", "soundfont")
PITCH_STEPS = 1.0  # semitones of the pitch alterations
TEMPO_CHANGE = 0.05  # relative tempo change of the tempo alterations
NOISE_SNR_DB = 20.0  # signal-to-noise ratio of the added white noise


def tempo_factor(alteration: str) -> float:
    """How much faster an altered clip plays (1.05: 5% faster, so 5% shorter)."""
    return {"tempo_up": 1 + TEMPO_CHANGE, "tempo_down": 1 - TEMPO_CHANGE}.get(alteration, 1.0)


def alter(samples: np.ndarray, alteration: str, *, rng: np.random.Generator) -> np.ndarray:
    """Apply one alteration (not "soundfont") to mono float32 audio at SAMPLE_RATE.

    Args:
        samples: the audio.
        alteration: one of ALTERATIONS except "soundfont".
        rng: draws the noise.

    Returns:
        Altered float32 audio; tempo alterations change its length by 1 / tempo_factor.
    """
    import librosa

    if alteration in ("pitch_up", "pitch_down"):
        steps = PITCH_STEPS if alteration == "pitch_up" else -PITCH_STEPS
        out = librosa.effects.pitch_shift(samples, sr=SAMPLE_RATE, n_steps=steps)
    elif alteration in ("tempo_up", "tempo_down"):
        out = librosa.effects.time_stretch(samples, rate=tempo_factor(alteration))
    elif alteration == "noise":
        power = float(np.mean(samples.astype(np.float64) ** 2))
        scale = np.sqrt(max(power, 1e-12) / 10 ** (NOISE_SNR_DB / 10))
        out = samples + rng.standard_normal(len(samples)) * scale
    else:
        raise ValueError(f"unknown alteration {alteration!r}")
    return np.ascontiguousarray(out, dtype=np.float32)
