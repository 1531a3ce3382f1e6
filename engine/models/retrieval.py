"""The search head: the studio encoder's embedding -> a retrieval embedding and a hash code."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from engine.models import load_checkpoint

CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class RetrievalConfig:
    """Shape of a RetrievalHead; stored inside its checkpoint."""

    input_dim: int = 256  # the studio encoder's embedding (mean over a segment's patches)
    hidden_dim: int = 512  # width of the shared hidden layer
    embedding_dim: int = 128  # the L2-normalised float embedding (cosine search)
    hash_bits: int = 64  # hash code length (bits = sign of the tanh outputs)
    dropout: float = 0.1  # dropout on the hidden layer while training


class RetrievalHead(nn.Module):
    """A segment's encoder embedding -> (unit embedding, relaxed hash code in (-1, 1))."""

    def __init__(self, config: RetrievalConfig) -> None:
        super().__init__()
        self.config = config
        self.trunk = nn.Sequential(
            nn.LayerNorm(config.input_dim),
            nn.Linear(config.input_dim, config.hidden_dim),
            nn.GELU(),
            nn.Dropout(config.dropout),
        )
        self.embed = nn.Linear(config.hidden_dim, config.embedding_dim)
        self.hash = nn.Linear(config.hidden_dim, config.hash_bits)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder embeddings (B, input_dim) -> (unit embeddings (B, D), tanh codes (B, bits))."""
        hidden = self.trunk(features)
        embedding = nn.functional.normalize(self.embed(hidden), dim=1)
        return embedding, torch.tanh(self.hash(hidden))

    def save(self, path: Path, *, encoder: str, metrics: dict) -> None:
        """Write a slim self-describing checkpoint (no optimizer state).

        Args:
            path: where to write.
            encoder: the file name of the encoder checkpoint whose embeddings the head reads.
            metrics: figures to keep with the weights.
        """
        torch.save(
            {
                "state_dict": self.state_dict(),
                "config": asdict(self.config),
                "encoder": encoder,
                "version": CHECKPOINT_VERSION,
                "metrics": metrics,
            },
            path,
        )

    @classmethod
    def from_checkpoint(
        cls, path: Path, *, device: str | torch.device = "cpu"
    ) -> tuple[RetrievalHead, str, dict]:
        """Rebuild a head from its checkpoint.

        Returns:
            (head in eval mode, the encoder checkpoint name it was trained on, stored metrics).

        Raises:
            ModelUnavailable: when the file is missing or not a search head checkpoint.
        """

        def build(stored: dict) -> RetrievalHead:
            model = cls(RetrievalConfig(**stored["config"]))
            model.load_state_dict(stored["state_dict"])
            return model

        model, stored = load_checkpoint(
            path,
            build,
            device=device,
            name="The search model file",
            missing="is missing. Reinstall the studio or retrain it "
            "(see checkpoints/retrieval.md).",
        )
        return model, str(stored["encoder"]), stored.get("metrics", {})
