"""The staff reader: a staff image -> per-column symbol probabilities, read out with CTC.

A residual CNN whose feature maps of several depths are brought to one height and fused
(multiscale fusion), a bidirectional SRU over the columns, and a linear layer to the tokens of
engine.score.encoding plus the CTC blank. The same class builds the baseline of end-to-end OMR
on PrIMuS (plain convolutions, no fusion, a BiLSTM) and the ablations, from its config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from engine.models import load_checkpoint, stored_config

CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class ReaderConfig:
    """Shape of a StaffReader; stored inside its checkpoint."""

    vocab_size: int  # tokens of the encoding, without the CTC blank
    height: int = 64  # rows of a staff image (a multiple of 16)
    channels: tuple[int, int, int, int] = (16, 32, 64, 96)  # width of the four CNN stages
    residual: bool = True  # residual blocks (False: plain conv-BN-ReLU, the CRNN baseline)
    fusion: bool = True  # fuse the four stages' maps (False: read the last stage only)
    recurrent: str = "sru"  # "sru" or "lstm": the bidirectional layer over the columns
    hidden: int = 192  # recurrent width per direction
    layers: int = 2  # stacked recurrent layers
    dropout: float = 0.2  # dropout before and between the recurrent layers


class ConvBlock(nn.Module):
    """Two 3x3 convolutions with batch norm; with a shortcut when residual."""

    def __init__(self, inputs: int, outputs: int, *, residual: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(inputs, outputs, 3, padding=1, bias=False),
            nn.BatchNorm2d(outputs),
            nn.ReLU(inplace=True),
            nn.Conv2d(outputs, outputs, 3, padding=1, bias=False),
            nn.BatchNorm2d(outputs),
        )
        self.shortcut: nn.Module | None = None
        if residual:
            self.shortcut = (
                nn.Identity() if inputs == outputs
                else nn.Sequential(nn.Conv2d(inputs, outputs, 1, bias=False),
                                   nn.BatchNorm2d(outputs))
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in, H, W) -> (B, out, H, W)."""
        out = self.body(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return torch.relu(out)


class _Recurrence(torch.autograd.Function):
    """c_t = f_t * c_{t-1} + (1 - f_t) * x_t along dim 0, with its gradient done by hand:
    one fused elementwise op per step each way instead of an autograd graph per step."""

    @staticmethod
    def forward(ctx, forget: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        states = torch.empty_like(candidate)
        state = torch.zeros_like(candidate[0])
        for t in range(candidate.shape[0]):
            state = torch.lerp(candidate[t], state, forget[t])
            states[t] = state
        ctx.save_for_backward(forget, candidate, states)
        return states

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
        forget, candidate, states = ctx.saved_tensors
        total = torch.empty_like(grad)
        carry = torch.zeros_like(grad[0])
        for t in range(grad.shape[0] - 1, -1, -1):
            carry = grad[t] + carry
            total[t] = carry
            carry = carry * forget[t]
        previous = torch.cat([torch.zeros_like(states[:1]), states[:-1]])
        return total * (previous - candidate), total * (1 - forget)


class SRU(nn.Module):
    """A bidirectional simple recurrent unit layer (Lei et al., "Simple Recurrent Units for
    Highly Parallelizable Recurrence", 2018), without the optional peephole terms.

    Every matrix product is done for all steps at once; only the elementwise state update
    c_t = f_t * c_{t-1} + (1 - f_t) * x~_t runs step by step, both directions together.
    """

    def __init__(self, inputs: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        # x~, forget gate, reset gate and the highway projection, for both directions.
        self.project = nn.Linear(inputs, 2 * 4 * hidden)
        with torch.no_grad():
            self.project.bias.view(2, 4, hidden)[:, 1].fill_(1.0)  # remember at first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(T, B, inputs) -> (T, B, 2 * hidden)."""
        steps, batch, _ = x.shape
        u = self.project(x).view(steps, batch, 2, 4, self.hidden)
        # The backward direction reads the sequence reversed.
        u = torch.stack([u[:, :, 0], u[:, :, 1].flip(0)], dim=2)
        candidate, forget, reset, highway = u.unbind(dim=3)
        c = _Recurrence.apply(torch.sigmoid(forget).contiguous(), candidate.contiguous())
        r = torch.sigmoid(reset)
        h = r * c + (1 - r) * highway
        h = torch.stack([h[:, :, 0], h[:, :, 1].flip(0)], dim=2)
        return h.reshape(steps, batch, 2 * self.hidden)


class StaffReader(nn.Module):
    """Staff images (B, 1, height, W) -> log-probabilities (W/4, B, vocab_size + 1)."""

    def __init__(self, config: ReaderConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2, c3, c4 = config.channels
        residual = config.residual
        self.stem = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1, bias=False), nn.BatchNorm2d(c1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.stage1 = ConvBlock(c1, c1, residual=residual)  # H/2, W/2
        self.stage2 = nn.Sequential(nn.MaxPool2d(2), ConvBlock(c1, c2, residual=residual))  # H/4
        self.stage3 = nn.Sequential(nn.MaxPool2d((2, 1)), ConvBlock(c2, c3, residual=residual))
        self.stage4 = nn.Sequential(nn.MaxPool2d((2, 1)), ConvBlock(c3, c4, residual=residual))
        rows = config.height // 16
        if config.fusion:
            # Each stage's map is pooled to the last stage's height and width, then fused.
            self.pool1 = nn.MaxPool2d((8, 2))
            self.pool2 = nn.MaxPool2d((4, 1))
            self.pool3 = nn.MaxPool2d((2, 1))
            self.fuse = nn.Sequential(
                nn.Conv2d(c1 + c2 + c3 + c4, c4, 1, bias=False), nn.BatchNorm2d(c4),
                nn.ReLU(inplace=True),
            )
        features = c4 * rows
        self.dropout = nn.Dropout(config.dropout)
        if config.recurrent == "sru":
            self.recurrent = nn.ModuleList(
                SRU(features if i == 0 else 2 * config.hidden, config.hidden)
                for i in range(config.layers)
            )
        elif config.recurrent == "lstm":
            self.lstm = nn.LSTM(features, config.hidden, num_layers=config.layers,
                                bidirectional=True, dropout=config.dropout)
        else:
            raise ValueError(f"unknown recurrent layer {config.recurrent!r}")
        self.classify = nn.Linear(2 * config.hidden, config.vocab_size + 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 1, H, W), ink 1 and paper 0 -> log-probabilities (T, B, vocab + 1)."""
        f1 = self.stage1(self.stem(images))
        f2 = self.stage2(f1)
        f3 = self.stage3(f2)
        f4 = self.stage4(f3)
        if self.config.fusion:
            width = f4.shape[-1]
            maps = [self.pool1(f1)[..., :width], self.pool2(f2), self.pool3(f3), f4]
            f4 = self.fuse(torch.cat(maps, dim=1))
        batch, channels, rows, width = f4.shape
        columns = f4.permute(3, 0, 1, 2).reshape(width, batch, channels * rows)
        x = self.dropout(columns)
        if self.config.recurrent == "sru":
            for index, layer in enumerate(self.recurrent):
                x = layer(x if index == 0 else self.dropout(x))
        else:
            x, _ = self.lstm(x)
        return torch.log_softmax(self.classify(x), dim=-1)

    @staticmethod
    def frames(widths: torch.Tensor) -> torch.Tensor:
        """Output columns for input widths."""
        return widths // 4

    def save(self, path: Path, *, vocab: list[str], metrics: dict) -> None:
        """Write a slim self-describing checkpoint (weights, config, vocabulary, metrics)."""
        torch.save(
            {
                "state_dict": self.state_dict(),
                "config": asdict(self.config),
                "vocab": list(vocab),
                "version": CHECKPOINT_VERSION,
                "metrics": metrics,
            },
            path,
        )

    @classmethod
    def from_checkpoint(
        cls, path: Path, *, device: str | torch.device = "cpu"
    ) -> tuple[StaffReader, list[str], dict]:
        """Rebuild a reader from its checkpoint.

        Returns:
            (reader in eval mode, its vocabulary, stored metrics).

        Raises:
            ModelUnavailable: when the file is missing or not a staff reader checkpoint.
        """

        def build(stored: dict) -> StaffReader:
            model = cls(stored_config(ReaderConfig, stored))
            model.load_state_dict(stored["state_dict"])
            return model

        model, stored = load_checkpoint(
            path, build, device=device, name="The score reader's model file",
            missing="is missing. Reinstall the studio or retrain it "
            "(see checkpoints/score_reader.md).",
        )
        return model, list(stored["vocab"]), stored.get("metrics", {})
