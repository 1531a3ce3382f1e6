"""Pure feature functions: log-mel, MFCC statistics, HPSS, chroma.

Every function is keyword-only after the signal, takes numpy float32 audio at a named
rate and returns numpy arrays; torch is used inside where it pays.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from engine.audio import SAMPLE_RATE

N_FFT = 2048  # samples per analysis window at SAMPLE_RATE (~93 ms)
HOP_LENGTH = 512  # samples between frames at SAMPLE_RATE (~23 ms)
N_MELS = 96  # mel bands of the display spectrogram
N_MFCC = 20  # MFCC coefficients of the classic baseline
TOP_DB = 80.0  # dynamic range kept in dB displays


@lru_cache(maxsize=8)
def _mel_transform(sample_rate: int, n_fft: int, hop_length: int, n_mels: int):
    import torchaudio

    return torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate,
        n_fft=n_fft,
        hop_length=hop_length,
        n_mels=n_mels,
        power=2.0,
        norm="slaney",
        mel_scale="slaney",
    )


def mel_power(
    samples: np.ndarray,
    *,
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    n_mels: int = N_MELS,
    backend: str = "torch",
) -> np.ndarray:
    """Mel power spectrogram, shape (n_mels, frames).

    Args:
        samples: mono float32 audio.
        sample_rate: rate of `samples` in Hz.
        n_fft: FFT size in samples.
        hop_length: samples between frames.
        n_mels: number of mel bands.
        backend: "torch" (torchaudio, fast) or "librosa" (reference).
    """
    if backend == "librosa":
        import librosa

        return librosa.feature.melspectrogram(
            y=samples, sr=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels
        ).astype(np.float32)
    transform = _mel_transform(sample_rate, n_fft, hop_length, n_mels)
    with torch.inference_mode():
        return transform(torch.from_numpy(np.ascontiguousarray(samples))).numpy()


def log_mel_db(
    samples: np.ndarray, *, sample_rate: int = SAMPLE_RATE, n_mels: int = N_MELS
) -> np.ndarray:
    """Mel spectrogram in dB relative to its peak (floor -TOP_DB), shape (n_mels, frames)."""
    power = mel_power(samples, sample_rate=sample_rate, n_mels=n_mels)
    ref = max(float(power.max(initial=0.0)), 1e-10)
    db = 10.0 * np.log10(np.maximum(power, 1e-10) / ref)
    return np.maximum(db, -TOP_DB).astype(np.float32)


def frame_times(
    n_frames: int, *, sample_rate: int = SAMPLE_RATE, hop_length: int = HOP_LENGTH
) -> np.ndarray:
    """Start time in seconds of each spectrogram frame."""
    return np.arange(n_frames, dtype=np.float32) * hop_length / sample_rate


def mel_frequencies(*, n_mels: int = N_MELS, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Centre frequency in Hz of each mel band."""
    import librosa

    return librosa.mel_frequencies(n_mels=n_mels, fmax=sample_rate / 2).astype(np.float32)


def mfcc_statistics(
    samples: np.ndarray,
    *,
    sample_rate: int = SAMPLE_RATE,
    n_mfcc: int = N_MFCC,
    backend: str = "torch",
) -> np.ndarray:
    """Summary vector of a clip's MFCCs: mean and std of MFCCs, deltas and delta-deltas.

    Returns:
        float32 vector of length 6 * n_mfcc.
    """
    import librosa

    power = mel_power(samples, sample_rate=sample_rate, n_mels=128, backend=backend)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(power), n_mfcc=n_mfcc)
    width = min(9, mfcc.shape[1] - (1 - mfcc.shape[1] % 2)) if mfcc.shape[1] >= 3 else 0
    parts = [mfcc]
    if width >= 3:
        parts += [
            librosa.feature.delta(mfcc, width=width),
            librosa.feature.delta(mfcc, order=2, width=width),
        ]
    else:
        parts += [np.zeros_like(mfcc), np.zeros_like(mfcc)]
    stacked = np.concatenate(parts, axis=0)
    return np.concatenate([stacked.mean(axis=1), stacked.std(axis=1)]).astype(np.float32)


def chroma(
    samples: np.ndarray,
    *,
    sample_rate: int = SAMPLE_RATE,
    hop_length: int = HOP_LENGTH,
    tuning: float | None = 0.0,
) -> np.ndarray:
    """Chromagram (12 pitch classes x frames, C first), each frame normalised to max 1.

    Args:
        samples: mono float32 audio.
        sample_rate: rate of `samples` in Hz.
        hop_length: samples between frames (the default matches `mel_power`'s frames).
        tuning: deviation from A440 in fractions of a bin; None estimates it from the audio
            (slow, and librosa warns on clips without pitch). Rendered MIDI is at A440.
    """
    import librosa

    return librosa.feature.chroma_stft(
        y=samples, sr=sample_rate, n_fft=N_FFT, hop_length=hop_length, tuning=tuning
    ).astype(np.float32)


ENCODER_RATE = 16_000  # Hz: the audio encoder's input rate (musicnn's)
ENCODER_HOP = 256  # hop of the encoder's log-mel (16 ms at ENCODER_RATE)
ENCODER_N_MELS = 96  # mel bands of the encoder's log-mel


def encoder_log_mel(
    samples: np.ndarray, *, sample_rate: int = SAMPLE_RATE, backend: str = "torch"
) -> np.ndarray:
    """The audio encoder's input: musicnn's log10(1 + 10000 * mel) at 16 kHz, (96, frames).

    The same representation (and resampler) as the pretrained musicnn, so its weights and
    the studio's encoder read identical input.

    Args:
        samples: mono float32 audio.
        sample_rate: rate of `samples` in Hz.
        backend: "torch" (the studio's) or "librosa" (a reference pipeline, for benchmarks).
    """
    if backend == "librosa":
        import librosa

        audio = librosa.resample(samples, orig_sr=sample_rate, target_sr=ENCODER_RATE)
        power = librosa.feature.melspectrogram(
            y=audio, sr=ENCODER_RATE, n_fft=512, hop_length=ENCODER_HOP, n_mels=ENCODER_N_MELS
        )
        return np.log10(1.0 + 10_000.0 * power).astype(np.float32)
    from engine.models.musicnn import log_mel, resample_to_model_rate

    with torch.inference_mode():
        audio = resample_to_model_rate(samples, sample_rate, ENCODER_RATE)
        return log_mel(audio).T.contiguous().numpy()


def patch_starts(n_frames: int, *, patch_frames: int, hop_frames: int) -> list[int]:
    """Start frames of the patches that cover `n_frames` (at least one patch)."""
    if n_frames <= patch_frames:
        return [0]
    starts = list(range(0, n_frames - patch_frames + 1, hop_frames))
    if starts[-1] + patch_frames < n_frames:
        starts.append(n_frames - patch_frames)
    return starts


def cut_patches(
    log_mel: np.ndarray, *, patch_frames: int, hop_frames: int
) -> tuple[np.ndarray, list[int]]:
    """Cut (channels?, mel, frames) into patches; short input is repeat-padded.

    Returns:
        (patches (N, ..., mel, patch_frames), start frame of each patch)
    """
    frames = log_mel.shape[-1]
    if frames < patch_frames:
        repeats = -(-patch_frames // max(frames, 1))
        log_mel = np.concatenate([log_mel] * repeats, axis=-1)[..., :patch_frames]
    starts = patch_starts(log_mel.shape[-1], patch_frames=patch_frames, hop_frames=hop_frames)
    return np.stack([log_mel[..., s : s + patch_frames] for s in starts]), starts


def encoder_hpss_log_mel(samples: np.ndarray, *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Encoder input with HPSS channels: (3, 96, frames) = mix, harmonic, percussive log-mels.

    The harmonic/percussive split is median-filtering HPSS on the 16 kHz power spectrogram,
    each part then projected to the encoder's mel bands.
    """
    import librosa

    from engine.models.musicnn import resample_to_model_rate

    with torch.inference_mode():
        audio = resample_to_model_rate(samples, sample_rate, ENCODER_RATE)
        mel = _mel_transform(ENCODER_RATE, 512, ENCODER_HOP, ENCODER_N_MELS)
        power = mel.spectrogram(audio).numpy()
        filters = mel.mel_scale.fb.numpy().T  # (mels, bins)
    harmonic, percussive = librosa.decompose.hpss(power, kernel_size=31, power=2.0)
    parts = [filters @ part for part in (power, harmonic, percussive)]
    return np.log10(1.0 + 10_000.0 * np.stack(parts)).astype(np.float32)
