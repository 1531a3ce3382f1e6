"""Music taggers pretrained on MTG-Jamendo, in PyTorch: the dataset's mood/theme CNN and the
FCN and musicnn of "Evaluation of CNN-based automatic music tagging models" (Won et al. 2020).

Each model reads its own log-mel spectrogram, computed here from the window and mel filterbank
stored in its checkpoint (so the studio's input equals the one the model was trained on), and
gives per input its tag logits and its penultimate layer. The weights are converted once by
``engine.train.convert_taggers`` from ``../shared/weights``; this module downloads nothing.

Two networks:
- "cnn": five 3 x 3 convolutions, each batch-normalised, activated (ELU or ReLU) and max-pooled,
  then one dense layer (Choi et al. 2016). The MTG-Jamendo baseline (56 mood/theme tags; ELU,
  12 kHz) and Won's FCN (MTG-Jamendo top-50; ReLU, 16 kHz) are this network; each reads ~29 s.
- "musicnn": Won's re-implementation of musicnn (Pons et al.): vertical and horizontal
  front-end filters, a residual 1-D mid-end, max- and mean-pooling over time and a 200-unit
  dense layer. Not the layer order of `engine.models.musicnn` (the TF original): BN before ReLU,
  pooled maps concatenated rather than interleaved. Reads 3 s patches.

    tagger = Tagger.from_checkpoint(path)
    out = tagger.embed(clip.samples, sample_rate=22_050)  # one row per model input
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.models import load_checkpoint
from engine.models.musicnn import resample_to_model_rate

CHECKPOINT_VERSION = 1  # format version of a converted tagger checkpoint


@dataclass(frozen=True)
class TaggerConfig:
    """Input representation and network of one pretrained tagger."""

    network: str  # "cnn" (Choi's 5-layer CNN) or "musicnn" (Won's musicnn)
    sample_rate: int  # Hz of the audio the log-mel is computed from
    n_fft: int = 512  # STFT size (samples)
    hop_length: int = 256  # STFT hop (samples)
    n_mels: int = 96  # mel bands (the filterbank itself is stored in the weights)
    pad_mode: str = "reflect"  # STFT edge padding of centred frames ("reflect" or "constant")
    db_multiplier: float = 10.0  # log-mel = db_multiplier * log10(max(mel power, amin))
    amin: float = 1e-10  # floor of the mel power before the log
    input_frames: int = 187  # frames per model input (the length the model was trained on)
    # How a clip is cut into inputs: False, inputs follow each other and the last ends with the
    # clip (the encoder's patches); True, round(frames / input_frames) inputs (at least one)
    # spread evenly from its start to its end: one input of a clip near its length is the
    # centred crop the model was trained on.
    spread_inputs: bool = False
    n_tags: int = 50  # outputs
    activation: str = "relu"  # "cnn": activation after each convolution ("relu" or "elu")
    channels: tuple[int, ...] = (64, 128, 128, 128, 64)  # "cnn": filters per convolution
    pools: tuple[tuple[int, int], ...] = ((2, 4), (2, 4), (2, 4), (3, 5), (4, 4))  # "cnn":
    # (mel, time) max-pooling after each convolution; 96 bands and >= 1280 frames pool to 1 x 1
    bn_eps: float = 1e-5  # PyTorch's default batch-norm epsilon, as trained

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists for tuples), safe for torch.save with weights_only loading."""
        return json_safe(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaggerConfig:
        """Inverse of `to_dict`; unknown keys are an error."""
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown TaggerConfig fields: {sorted(unknown)}")
        values = dict(data)
        if "pools" in values:
            values["pools"] = tuple(tuple(p) for p in values["pools"])
        if "channels" in values:
            values["channels"] = tuple(values["channels"])
        return cls(**values)


def json_safe(value: Any) -> Any:
    """Tuples (nested) as lists."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [json_safe(v) for v in value]
    return value


@dataclass(frozen=True)
class TaggerOutput:
    """Per model input (one row each): tag logits and the penultimate layer."""

    logits: torch.Tensor  # (inputs, n_tags) pre-sigmoid tag scores
    penultimate: torch.Tensor  # (inputs, 64 for "cnn" / 200 for "musicnn")

    @property
    def features(self) -> torch.Tensor:
        """(inputs, penultimate + n_tags): what the studio's heads read."""
        return torch.cat([self.penultimate, self.logits], dim=1)


class ChoiCNN(nn.Module):
    """Five (conv 3 x 3 -> BN -> activation -> max-pool) blocks, then a dense layer."""

    def __init__(self, config: TaggerConfig) -> None:
        super().__init__()
        eps = config.bn_eps
        self.bn_input = nn.BatchNorm2d(1, eps=eps)
        widths = (1, *config.channels)
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, 3, padding=1) for a, b in zip(widths, widths[1:], strict=False)
        )
        self.bns = nn.ModuleList(nn.BatchNorm2d(b, eps=eps) for b in config.channels)
        self.pools = config.pools
        self.activation = F.elu if config.activation == "elu" else F.relu
        self.dense = nn.Linear(config.channels[-1], config.n_tags)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(penultimate (B, channels[-1]), logits (B, n_tags)) of log-mels (B, n_mels, frames)."""
        x = self.bn_input(mel.unsqueeze(1))
        for conv, bn, pool in zip(self.convs, self.bns, self.pools, strict=True):
            x = F.max_pool2d(self.activation(bn(conv(x))), pool)
        penultimate = x.flatten(1)
        return penultimate, self.dense(penultimate)


class _Block(nn.Module):
    """A convolution, then batch norm."""

    def __init__(self, conv: nn.Module, bn: nn.Module) -> None:
        super().__init__()
        self.conv, self.bn = conv, bn


class WonMusicnn(nn.Module):
    """musicnn as Won et al. trained it on MTG-Jamendo (64-channel mid-end, 200-unit dense)."""

    def __init__(self, config: TaggerConfig) -> None:
        super().__init__()
        eps = config.bn_eps
        self.bn_input = nn.BatchNorm2d(1, eps=eps)
        # Vertical (timbral) filters spanning 70% and 40% of the bands, 7 frames long.
        self.vertical = nn.ModuleList(
            _Block(nn.Conv2d(1, 204, (int(h * config.n_mels), 7), padding=(0, 3)),
                   nn.BatchNorm2d(204, eps=eps))
            for h in (0.7, 0.4)
        )  # fmt: skip
        # Horizontal (temporal) filters over the band-averaged spectrum.
        self.horizontal = nn.ModuleList(
            _Block(nn.Conv1d(1, 51, n, padding=n // 2), nn.BatchNorm1d(51, eps=eps))
            for n in (129, 65, 33)
        )
        widths = (561, 64, 64)
        self.midend = nn.ModuleList(
            _Block(nn.Conv1d(w, 64, 7, padding=3), nn.BatchNorm1d(64, eps=eps)) for w in widths
        )
        self.dense = nn.Linear(2 * (561 + 3 * 64), 200)
        self.bn_dense = nn.BatchNorm1d(200, eps=eps)
        self.output = nn.Linear(200, config.n_tags)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(penultimate (B, 200), logits (B, n_tags)) of log-mels (B, n_mels, frames)."""
        x = self.bn_input(mel.unsqueeze(1))  # (B, 1, mels, T)
        maps = [F.relu(b.bn(b.conv(x))).amax(dim=2) for b in self.vertical]
        flat = x.mean(dim=2)  # (B, 1, T)
        maps += [F.relu(b.bn(b.conv(flat))) for b in self.horizontal]
        front = torch.cat(maps, dim=1)  # (B, 561, T)
        m1 = F.relu(self.midend[0].bn(self.midend[0].conv(front)))
        m2 = F.relu(self.midend[1].bn(self.midend[1].conv(m1))) + m1
        m3 = F.relu(self.midend[2].bn(self.midend[2].conv(m2))) + m2
        mid = torch.cat([front, m1, m2, m3], dim=1)
        pooled = torch.cat([mid.amax(dim=2), mid.mean(dim=2)], dim=1)
        penultimate = F.relu(self.bn_dense(self.dense(pooled)))
        return penultimate, self.output(penultimate)


def cut_inputs(
    mel: torch.Tensor, frames: int, *, spread: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a (n_mels, T) log-mel into (inputs, n_mels, frames), as `TaggerConfig.spread_inputs`
    says (not spread: as engine.features.cut_patches); short input is repeated to fill one.

    Returns:
        (inputs, start frame of each)
    """
    if mel.shape[1] < frames:
        mel = mel.repeat(1, -(-frames // mel.shape[1]))[:, :frames]
    last = mel.shape[1] - frames
    if spread:
        count = max(1, round(mel.shape[1] / frames))
        starts = [round(last / 2)] if count == 1 else np.linspace(0, last, count).round()
        starts = [int(s) for s in starts]
    else:
        starts = list(range(0, last + 1, frames))
        if starts[-1] < last:
            starts.append(last)
    return torch.stack([mel[:, s : s + frames] for s in starts]), torch.tensor(starts)


NETWORKS: dict[str, type[nn.Module]] = {"cnn": ChoiCNN, "musicnn": WonMusicnn}


class Tagger(nn.Module):
    """A pretrained tagger with its own log-mel front end (window and filterbank as buffers)."""

    def __init__(self, config: TaggerConfig, labels: tuple[str, ...] = ()) -> None:
        super().__init__()
        if labels and len(labels) != config.n_tags:
            raise ValueError(f"{len(labels)} labels for {config.n_tags} tags")
        self.config = config
        self.labels = tuple(labels)
        self.register_buffer("window", torch.hann_window(config.n_fft))
        self.register_buffer("mel_filters", torch.zeros(config.n_mels, config.n_fft // 2 + 1))
        self.network = NETWORKS[config.network](config)

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str | torch.device = "cpu") -> Tagger:
        """Load a checkpoint written by engine.train.convert_taggers, in eval mode.

        Raises:
            ModelUnavailable: when the file is missing or not a tagger checkpoint.
        """

        def build(stored: dict[str, Any]) -> Tagger:
            if stored.get("version") != CHECKPOINT_VERSION:
                raise ValueError(f"unsupported checkpoint version {stored.get('version')!r}")
            model = cls(TaggerConfig.from_dict(stored["config"]), tuple(stored["labels"]))
            model.load_state_dict(stored["state_dict"])
            return model

        missing = "is missing: convert it with python -m engine.train.convert_taggers."
        return load_checkpoint(path, build, device=device, name="Tagger", missing=missing)[0]

    def log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        """(n_mels, frames) log-mel of mono audio at `config.sample_rate` (centred frames)."""
        config = self.config
        spectrum = torch.stft(
            audio,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            window=self.window,
            center=True,
            pad_mode=config.pad_mode,
            return_complex=True,
        )
        power = self.mel_filters @ spectrum.abs().pow(2)
        return config.db_multiplier * torch.log10(power.clamp(min=config.amin))

    def features(self, mel: torch.Tensor) -> TaggerOutput:
        """Outputs for a batch of log-mel inputs (B, n_mels, frames)."""
        penultimate, logits = self.network(mel)
        return TaggerOutput(logits=logits, penultimate=penultimate)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Tag logits (B, n_tags) of log-mel inputs (B, n_mels, frames)."""
        return self.features(mel).logits

    @torch.inference_mode()
    def embed(
        self, audio: np.ndarray | torch.Tensor, sample_rate: int, *, batch_size: int = 16
    ) -> tuple[TaggerOutput, np.ndarray]:
        """Outputs for mono audio at any rate, one row per model input.

        The clip's log-mel is cut into inputs of `config.input_frames` as
        `config.spread_inputs` says (a clip shorter than one input is repeated to fill it).

        Returns:
            (outputs, start time of each input in seconds)
        """
        x = resample_to_model_rate(audio, sample_rate, self.config.sample_rate)
        batch, starts = cut_inputs(
            self.log_mel(x), self.config.input_frames, spread=self.config.spread_inputs
        )
        parts = [self.features(batch[i : i + batch_size]) for i in range(0, len(batch), batch_size)]
        out = TaggerOutput(
            logits=torch.cat([p.logits for p in parts]),
            penultimate=torch.cat([p.penultimate for p in parts]),
        )
        return out, starts.numpy() * self.config.hop_length / self.config.sample_rate

    @property
    def input_seconds(self) -> float:
        """Length of one model input in seconds."""
        return self.config.input_frames * self.config.hop_length / self.config.sample_rate
