"""musicnn (Pons & Serra, 2019) in PyTorch: the MSD_musicnn music tagger and its embeddings.

A faithful port of the TensorFlow 1 model shipped in the ``musicnn==0.1.0`` wheel (ISC
licence). Weights are converted once by ``engine.train.convert_musicnn``; this module has
no TensorFlow dependency.

Usage from studio audio (22,050 Hz mono float32)::

    model = Musicnn.from_checkpoint("checkpoints/musicnn_msd.pt")
    out = model.embed(clip.samples, sample_rate=22_050)  # one row per ~3 s patch
    clip_vector = out.penultimate.mean(dim=0)  # 200-d clip embedding
    tags = dict(zip(model.labels, out.probabilities.mean(dim=0).tolist()))
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MODEL_SAMPLE_RATE = 16_000  # Hz: the rate musicnn was trained at
CHECKPOINT_VERSION = 1  # format version of the converted checkpoint dict
FLOAT16_MAX = 65_504.0  # largest finite float16

# resampy's "kaiser_best" filter (librosa 0.7's default resampler, which musicnn used): a
# Kaiser-windowed sinc over 50 zero crossings (45.87 of the rolled-off sinc), as stored in
# resampy/data/kaiser_best.npz. The model is sensitive to the top mel bands (7.5-8 kHz),
# which is where resamplers differ.
_RESAMPY_ROLLOFF = 0.9173473712608761
_KAISER_BEST: dict[str, Any] = {
    "lowpass_filter_width": 50 * _RESAMPY_ROLLOFF,
    "rolloff": _RESAMPY_ROLLOFF,
    "resampling_method": "sinc_interp_kaiser",
    "beta": 12.984585866139955,
}


@dataclass(frozen=True)
class MusicnnConfig:
    """Input preprocessing and layer sizes of a musicnn model (defaults: MSD_musicnn)."""

    sample_rate: int = MODEL_SAMPLE_RATE  # Hz of the audio the log-mel is computed from
    n_fft: int = 512  # STFT size (samples), Hann window of the same length
    hop_length: int = 256  # STFT hop (samples): 16 ms frames
    n_mels: int = 96  # Slaney-scale, Slaney-normalised mel bands from 0 Hz to sample_rate / 2
    pad_mode: str = "reflect"  # STFT edge padding of librosa 0.7, which musicnn used
    log_scale: float = 10_000.0  # C in the log compression log10(C * mel + 1)
    patch_frames: int = 187  # frames per model input patch: 3 s, as in training
    timbral_filters: int = 204  # filters per timbral conv: int(1.6 * 128)
    timbral_length: int = 7  # time extent (frames) of the timbral kernels
    timbral_heights: tuple[int, ...] = (38, 67)  # mel extent: int(0.4 * 96), int(0.7 * 96)
    temporal_filters: int = 51  # filters per temporal conv: int(1.6 * 32)
    temporal_lengths: tuple[int, ...] = (128, 64, 32)  # time extent (frames) of each temporal conv
    midend_filters: int = 64  # channels of each of the 3 dense 1-D mid-end convs
    midend_length: int = 7  # time extent (frames) of the mid-end kernels
    backend_units: int = 200  # width of the penultimate dense layer (the embedding)
    n_tags: int = 50  # output tags
    bn_eps: float = 1e-3  # TF1 batch-normalisation epsilon
    dropout: float = 0.5  # dropout before each dense layer (inactive in eval mode)

    @property
    def frontend_channels(self) -> int:
        """Channels after concatenating the timbral and temporal front-end maps (561)."""
        return self.timbral_filters * len(self.timbral_heights) + self.temporal_filters * len(
            self.temporal_lengths
        )

    @property
    def midend_channels(self) -> int:
        """Channels of the densely connected mid-end output (753): the pooled feature size."""
        return self.frontend_channels + 3 * self.midend_filters

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (lists for tuples), safe for torch.save/weights_only."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MusicnnConfig:
        """Inverse of `to_dict`; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown MusicnnConfig fields: {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass(frozen=True)
class MusicnnOutput:
    """Per-patch outputs of musicnn; every tensor has one row per ~3 s patch."""

    logits: torch.Tensor  # (patches, n_tags) pre-sigmoid tag scores
    probabilities: torch.Tensor  # (patches, n_tags) sigmoid(logits), independent per tag
    penultimate: torch.Tensor  # (patches, 200) batch-normalised dense layer: the embedding
    mean_pool: torch.Tensor  # (patches, 753) time-mean of the mid-end features
    max_pool: torch.Tensor  # (patches, 753) time-max of the mid-end features


# ---------------------------------------------------------------------------------------
# Input representation
# ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _mel_filters(config: MusicnnConfig) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) filterbank equal to librosa.filters.mel's defaults."""
    import torchaudio

    fb = torchaudio.functional.melscale_fbanks(
        n_freqs=config.n_fft // 2 + 1,
        f_min=0.0,
        f_max=config.sample_rate / 2,
        n_mels=config.n_mels,
        sample_rate=config.sample_rate,
        norm="slaney",
        mel_scale="slaney",
    )
    return fb.T.contiguous()


def _as_mono_tensor(audio: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(audio).detach()
    if x.ndim != 1:
        raise ValueError(f"expected mono audio of shape (samples,), got {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError("audio has no samples")
    return x.to(torch.float32)


def resample_to_model_rate(
    audio: np.ndarray | torch.Tensor, sample_rate: int, target_rate: int = MODEL_SAMPLE_RATE
) -> torch.Tensor:
    """Resample mono audio to musicnn's 16 kHz with a Kaiser windowed sinc (resampy kaiser_best).

    Args:
        audio: mono samples, shape (samples,).
        sample_rate: rate of `audio` in Hz (the studio's is 22,050).
        target_rate: rate to resample to.

    Returns:
        float32 tensor at `target_rate`.
    """
    x = _as_mono_tensor(audio)
    if sample_rate == target_rate:
        return x
    import torchaudio

    return torchaudio.functional.resample(x, sample_rate, target_rate, **_KAISER_BEST)


def log_mel(
    audio: np.ndarray | torch.Tensor,
    config: MusicnnConfig | None = None,
    *,
    float16: bool = True,
) -> torch.Tensor:
    """musicnn's input representation of a whole clip: log10(C * mel + 1), shape (frames, n_mels).

    Matches ``musicnn.extractor.batch_data`` (librosa melspectrogram, power 2, centred
    frames, 1 + samples // hop of them) in the environment musicnn 0.1.0 pins: librosa 0.7,
    whose STFT reflect-pads the edges. librosa >= 0.10 zero-pads them instead: use
    ``pad_mode="constant"`` to match it (only the first and last frame differ).

    musicnn stores the mel as float16 (as its training data was) and then takes the log. Under
    the numpy it pins (< 1.17) ``10000 * float16`` is promoted to float32; under numpy >= 2
    (NEP 50) it stays float16 and overflows to inf for any mel above 6.55, which happens in
    real music and collapses musicnn's output to one constant tag vector. This function
    follows the numpy 1.x semantics the model was trained with: the mel is rounded to
    float16 (``float16=True``), the log is taken in float32.

    Args:
        audio: mono float audio at ``config.sample_rate`` (16 kHz), shape (samples,).
        config: preprocessing parameters (default: MSD_musicnn's).
        float16: round the mel to float16 first, as musicnn does (True), or not.

    Returns:
        float32 tensor (frames, n_mels).
    """
    config = config or MusicnnConfig()
    x = _as_mono_tensor(audio)
    pad = config.n_fft // 2
    if config.pad_mode == "reflect" and x.numel() <= pad:
        x = F.pad(x, (0, pad + 1 - x.numel()))  # reflect padding needs more samples than pad
    window = torch.hann_window(config.n_fft, dtype=torch.float32, device=x.device)
    spec = torch.stft(
        x,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        window=window,
        center=True,
        pad_mode=config.pad_mode,
        return_complex=True,
    )
    power = spec.abs().pow(2)  # (freqs, frames)
    mel = (_mel_filters(config).to(x.device) @ power).T.contiguous()  # (frames, n_mels)
    if float16:  # musicnn would make mels above the float16 range inf; we clamp
        mel = mel.clamp(max=FLOAT16_MAX).to(torch.float16).to(torch.float32)
    return torch.log10(config.log_scale * mel + 1.0)


def patch(
    rep: torch.Tensor, config: MusicnnConfig | None = None, hop_frames: int | None = None
) -> torch.Tensor:
    """Cut a (frames, n_mels) log-mel into (patches, patch_frames, n_mels) model inputs.

    Patches start every `hop_frames` frames (default: patch_frames, i.e. no overlap, as in
    musicnn); a trailing partial patch is dropped. Clips shorter than one patch are
    repeat-padded to one patch, as musicnn's training did.

    Args:
        rep: log-mel from `log_mel`.
        config: supplies patch_frames.
        hop_frames: frames between patch starts.

    Returns:
        Tensor (patches, patch_frames, n_mels), patches >= 1.
    """
    config = config or MusicnnConfig()
    n = config.patch_frames
    hop = hop_frames or n
    if rep.shape[0] < n:
        rep = rep.repeat(-(-n // rep.shape[0]), 1)[:n]
    return rep.unfold(0, n, hop).transpose(1, 2).contiguous()


def log_mel_patches(
    audio: np.ndarray | torch.Tensor,
    config: MusicnnConfig | None = None,
    *,
    hop_frames: int | None = None,
    float16: bool = True,
) -> torch.Tensor:
    """16 kHz mono audio -> model-ready patches (patches, patch_frames, n_mels).

    See `log_mel` and `patch` for the details; 30 s of audio gives 10 patches.
    """
    config = config or MusicnnConfig()
    return patch(log_mel(audio, config, float16=float16), config, hop_frames)


# ---------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------


def _same_pad(length: int) -> tuple[int, int]:
    """TF 'same' padding of a kernel of `length` (extra frame at the end when even)."""
    before = (length - 1) // 2
    return before, length - 1 - before


class _FrontendBlock(nn.Module):
    """Conv2d over (time, mel) -> ReLU -> BN -> max over the mel axis."""

    def __init__(self, filters: int, length: int, height: int, eps: float) -> None:
        super().__init__()
        self.pad = _same_pad(length)
        self.conv = nn.Conv2d(1, filters, kernel_size=(length, height))
        self.bn = nn.BatchNorm2d(filters, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, mels) -> (B, filters, T)."""
        z = self.conv(F.pad(x, (0, 0, *self.pad)))
        if self.training:
            return self.bn(F.relu(z)).amax(dim=3)
        # In eval mode BN(ReLU(.)) is monotonic per channel, so max over the mel axis commutes
        # with it (taking the min where the BN scale is negative): same result, ~2x faster.
        low, high = z.aminmax(dim=3)
        scale_up = (self.bn.weight >= 0)[None, :, None]
        bn = self.bn
        return F.batch_norm(
            F.relu(torch.where(scale_up, high, low)),
            bn.running_mean,
            bn.running_var,
            bn.weight,
            bn.bias,
            training=False,
            eps=bn.eps,
        )


class _MidendBlock(nn.Module):
    """Conv1d over time -> ReLU -> BN."""

    def __init__(self, channels_in: int, filters: int, length: int, eps: float) -> None:
        super().__init__()
        self.pad = _same_pad(length)
        self.conv = nn.Conv1d(channels_in, filters, kernel_size=length)
        self.bn = nn.BatchNorm1d(filters, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, filters, T)."""
        return self.bn(F.relu(self.conv(F.pad(x, self.pad))))


class MusicnnBackend(nn.Module):
    """musicnn after its front end: the dense mid-end, time pooling and the penultimate layer.

    `Musicnn` is one; on its own it is a second, separately trained copy of that part reading
    the same front-end maps (the encoder's mood heads read one fine-tuned for mood).
    """

    def __init__(self, config: MusicnnConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or MusicnnConfig()
        eps = config.bn_eps
        widths = (config.frontend_channels, config.midend_filters, config.midend_filters)
        self.midend = nn.ModuleList(
            _MidendBlock(w, config.midend_filters, config.midend_length, eps) for w in widths
        )
        pooled = 2 * config.midend_channels
        self.bn_pool = nn.BatchNorm1d(pooled, eps=eps)
        self.dense = nn.Linear(pooled, config.backend_units)
        self.bn_dense = nn.BatchNorm1d(config.backend_units, eps=eps)
        self.dropout = nn.Dropout(config.dropout)

    @property
    def trunk_dim(self) -> int:
        """Size of `trunk_features` (1706): penultimate + mean- and max-pooled mid-end."""
        return self.config.backend_units + 2 * self.config.midend_channels

    def backend(self, front: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(penultimate (B, 200), mean_pool (B, 753), max_pool (B, 753)) of front-end maps."""
        m1 = self.midend[0](front)
        m2 = self.midend[1](m1) + m1
        m3 = self.midend[2](m2) + m2
        mid = torch.cat([front, m1, m2, m3], dim=1)  # (B, 753, T)
        max_pool = mid.amax(dim=2)
        mean_pool = mid.mean(dim=2)
        # TF flattens the (753, 2) [max, mean] map row-major: features interleave.
        pooled = torch.stack([max_pool, mean_pool], dim=2).flatten(1)
        pooled = self.dropout(self.bn_pool(pooled))
        return self.bn_dense(F.relu(self.dense(pooled))), mean_pool, max_pool

    def trunk_features(self, front: torch.Tensor) -> torch.Tensor:
        """(B, trunk_dim): penultimate, mean pool and max pool of front-end maps, concatenated."""
        return torch.cat(self.backend(front), dim=1)


class Musicnn(MusicnnBackend):
    """musicnn: musically motivated front-end, dense mid-end, pooled dense back-end.

    Input is a batch of log-mel patches (B, patch_frames, n_mels) from `log_mel_patches`.
    Any patch length works (the back-end pools over time), but the model was trained on 3 s.
    """

    def __init__(self, config: MusicnnConfig | None = None, labels: tuple[str, ...] = ()) -> None:
        super().__init__(config)
        config = self.config
        if labels and len(labels) != config.n_tags:
            raise ValueError(f"{len(labels)} labels for {config.n_tags} tags")
        self.labels: tuple[str, ...] = tuple(labels)
        eps = config.bn_eps
        self.bn_input = nn.BatchNorm2d(1, eps=eps)
        self.timbral = nn.ModuleList(
            _FrontendBlock(config.timbral_filters, config.timbral_length, h, eps)
            for h in config.timbral_heights
        )
        self.temporal = nn.ModuleList(
            _FrontendBlock(config.temporal_filters, length, 1, eps)
            for length in config.temporal_lengths
        )
        self.output = nn.Linear(config.backend_units, config.n_tags)

    @classmethod
    def from_checkpoint(cls, path: str | Path, map_location: str | torch.device = "cpu") -> Musicnn:
        """Load a checkpoint written by engine.train.convert_musicnn, in eval mode.

        Args:
            path: the .pt file (a dict with state_dict, config, labels, version, metrics).
            map_location: device for the weights.

        Returns:
            The model, with `labels` set.
        """
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
        if ckpt.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"{path}: unsupported checkpoint version {ckpt.get('version')!r}")
        model = cls(MusicnnConfig.from_dict(ckpt["config"]), tuple(ckpt["labels"]))
        model.load_state_dict(ckpt["state_dict"])
        return model.eval()

    def frontend(self, patches: torch.Tensor) -> torch.Tensor:
        """Front-end maps (B, 561, T) of log-mel patches (B, T, n_mels)."""
        x = self.bn_input(patches.unsqueeze(1))  # (B, 1, T, mels)
        return torch.cat([block(x) for block in (*self.timbral, *self.temporal)], dim=1)

    def features(self, patches: torch.Tensor) -> MusicnnOutput:
        """All outputs for a batch of log-mel patches (B, T, n_mels)."""
        penultimate, mean_pool, max_pool = self.backend(self.frontend(patches))
        logits = self.output(self.dropout(penultimate))
        return MusicnnOutput(
            logits=logits,
            probabilities=torch.sigmoid(logits),
            penultimate=penultimate,
            mean_pool=mean_pool,
            max_pool=max_pool,
        )

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """Tag logits (B, n_tags) for log-mel patches (B, T, n_mels)."""
        return self.features(patches).logits

    @torch.inference_mode()
    def embed(
        self,
        audio: np.ndarray | torch.Tensor,
        sample_rate: int,
        *,
        hop_frames: int | None = None,
        batch_size: int = 32,
    ) -> MusicnnOutput:
        """Tags and embeddings of mono audio at any rate, one row per ~3 s patch.

        Args:
            audio: mono float samples (samples,), e.g. a studio Clip's 22,050 Hz samples.
            sample_rate: rate of `audio`; resampled to 16 kHz when different.
            hop_frames: frames between patch starts (default 187: no overlap, as musicnn).
            batch_size: patches per forward pass.

        Returns:
            MusicnnOutput on the model's device; average over dim 0 for clip-level values.
        """
        device = next(self.parameters()).device
        x = resample_to_model_rate(audio, sample_rate, self.config.sample_rate)
        patches = log_mel_patches(x.to(device), self.config, hop_frames=hop_frames)
        parts = [
            self.features(patches[i : i + batch_size]) for i in range(0, len(patches), batch_size)
        ]
        return MusicnnOutput(
            **{
                f.name: torch.cat([getattr(p, f.name) for p in parts])
                for f in dataclasses.fields(MusicnnOutput)
            }
        )
