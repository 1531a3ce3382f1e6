"""The studio's audio encoder: log-mel patches -> trunk -> embedding -> task heads (genre, mood)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from engine.models import load_checkpoint
from engine.models.musicnn import Musicnn, MusicnnBackend

CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class EncoderConfig:
    """Shape of a StudioEncoder; stored inside its checkpoint."""

    trunk: str = "musicnn"  # "musicnn": MSD-pretrained musicnn; "cnn": small CNN from scratch
    input_channels: int = 1  # 1: log-mel; 3: log-mel + harmonic + percussive (HPSS)
    n_mels: int = 96  # mel bands of the input patches
    patch_frames: int = 187  # frames per input patch (~3 s at 16 kHz, hop 256)
    cnn_width: int = 32  # channels of the first block of the "cnn" trunk (doubling per block)
    embedding_dim: int = 256  # size of the shared clip embedding
    dropout: float = 0.3  # dropout before the heads while training
    heads: tuple[tuple[str, int], ...] = field(default=(("genre", 11),))  # (name, outputs)
    # Heads that read the trunk's features instead of the embedding (mood), (name, outputs).
    trunk_heads: tuple[tuple[str, int], ...] = ()
    # musicnn trunk only: the trunk heads read their own copy of musicnn's mid-end (fine-tuned
    # for them, engine.train.mood) over the same front-end maps, not the shared features.
    head_midend: bool = False


class ConvTrunk(nn.Module):
    """Four conv blocks over (channels, mel, time), pooled to one vector per patch."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = config.input_channels
        width = config.cnn_width
        for _ in range(4):
            layers += [
                nn.Conv2d(channels, width, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels, width = width, width * 2
        self.blocks = nn.Sequential(*layers)
        self.output_dim = channels * 2

    def forward(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, mel, time) -> (features, the same for the trunk heads), each (B, output_dim):
        mean over frequency, mean+max over time."""
        x = self.blocks(patches).mean(dim=2)
        features = torch.cat([x.mean(dim=2), x.amax(dim=2)], dim=1)
        return features, features


class MusicnnTrunk(nn.Module):
    """musicnn (MSD-pretrained) as a trunk: penultimate layer + pooled mid-end features."""

    def __init__(self, head_midend: bool = False) -> None:
        super().__init__()
        self.musicnn = Musicnn()
        self.output_dim = self.musicnn.trunk_dim
        # The trunk heads' own mid-end over the shared front end (None: they read `features`).
        self.head_midend = MusicnnBackend(self.musicnn.config) if head_midend else None

    def load_pretrained(self, path: Path) -> None:
        """Start from the converted MSD weights (engine.train.convert_musicnn)."""
        self.musicnn.load_state_dict(Musicnn.from_checkpoint(path).state_dict())

    def forward(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, mel, time) -> (features, the trunk heads' features), each (B, output_dim)."""
        front = self.musicnn.frontend(patches[:, 0].transpose(1, 2))
        features = self.musicnn.trunk_features(front)
        if self.head_midend is None:
            return features, features
        return features, self.head_midend.trunk_features(front)


def build_trunk(config: EncoderConfig) -> ConvTrunk | MusicnnTrunk:
    """The trunk named by the config; it has an `output_dim` attribute."""
    if config.head_midend and config.trunk != "musicnn":
        raise ValueError(f"the {config.trunk!r} trunk has no mid-end for the heads to copy")
    if config.trunk == "cnn":
        return ConvTrunk(config)
    if config.trunk == "musicnn":
        return MusicnnTrunk(config.head_midend)
    raise ValueError(f"unknown trunk {config.trunk!r}")


class StudioEncoder(nn.Module):
    """One forward pass: patches -> (embedding, logits per head)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.trunk = build_trunk(config)
        self.project = nn.Sequential(
            nn.Linear(self.trunk.output_dim, config.embedding_dim),
            nn.BatchNorm1d(config.embedding_dim),
            nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout(config.dropout)
        self.heads = nn.ModuleDict(
            {name: nn.Linear(config.embedding_dim, size) for name, size in config.heads}
        )
        self.trunk_heads = nn.ModuleDict(
            {name: nn.Linear(self.trunk.output_dim, size) for name, size in config.trunk_heads}
        )

    def forward(self, patches: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Map patches (B, C, n_mels, patch_frames) to (embedding (B, D), {head: logits})."""
        features, head_features = self.trunk(patches)
        embedding = self.project(features)
        hidden = self.dropout(embedding)
        logits = {name: head(hidden) for name, head in self.heads.items()}
        return embedding, logits | {
            name: head(head_features) for name, head in self.trunk_heads.items()
        }

    def save(self, path: Path, *, labels: dict[str, list[str]], metrics: dict) -> None:
        """Write a slim self-describing checkpoint (no optimizer state)."""
        torch.save(
            {
                "state_dict": self.state_dict(),
                "config": asdict(self.config),
                "labels": labels,
                "version": CHECKPOINT_VERSION,
                "metrics": metrics,
            },
            path,
        )

    @classmethod
    def from_checkpoint(
        cls, path: Path, *, device: str | torch.device = "cpu"
    ) -> tuple[StudioEncoder, dict[str, list[str]], dict]:
        """Rebuild an encoder from its checkpoint.

        Returns:
            (encoder in eval mode, labels per head, stored metrics).

        Raises:
            ModelUnavailable: when the file is missing or not a studio encoder checkpoint.
        """

        def build(stored: dict) -> StudioEncoder:
            raw = dict(stored["config"])
            for key in ("heads", "trunk_heads"):  # lists (older saves) back to tuples
                if key in raw:
                    raw[key] = tuple(tuple(head) for head in raw[key])
            model = cls(EncoderConfig(**raw))
            model.load_state_dict(stored["state_dict"])
            return model

        model, stored = load_checkpoint(
            path,
            build,
            device=device,
            name="The model file",
            missing="is missing. Reinstall the studio or retrain the model (see its model card "
            "in checkpoints/).",
        )
        return model, stored["labels"], stored.get("metrics", {})
