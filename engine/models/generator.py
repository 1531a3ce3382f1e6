"""The music generator: a small decoder-only transformer over REMI tokens, and its sampler.

A sequence starts with a style token and a tempo token (the conditioning), then the piece's
tokens. Sampling keeps a key/value cache per layer, so each new token costs one position's
worth of work; past the context length the window slides, re-primed at a bar line.
"""

from __future__ import annotations

import contextlib
import math
import pickle
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import ModelUnavailable

CHECKPOINT_VERSION = 1
KIND = "music-generator"  # checkpoints say what they hold


@dataclass(frozen=True)
class GeneratorConfig:
    """Shape of a MusicTransformer; stored inside its checkpoint."""

    vocab_size: int = 512  # token ids the model reads and predicts (the tokenizer's vocabulary)
    context: int = 768  # most tokens attended to at once (learned positions)
    layers: int = 4  # transformer blocks
    heads: int = 4  # attention heads per block
    width: int = 256  # embedding and residual width
    mlp_ratio: int = 4  # hidden width of each block's MLP, as a multiple of `width`
    dropout: float = 0.1  # dropout while training (0 at inference)


@dataclass(frozen=True)
class SamplingParams:
    """How to draw tokens; frozen so a result can say exactly how it was made."""

    temperature: float = 1.0  # logits are divided by this; < 1 is safer, > 1 wilder
    top_p: float = 0.95  # nucleus: sample from the smallest set of tokens with this much mass
    guidance: float = 1.0  # classifier-free guidance: logits u + guidance * (c - u); 1 = off
    max_new_tokens: int = 4096  # hard cap on generated tokens


class _Cache:
    """Keys and values of every layer for the positions seen so far (batch of one or more)."""

    def __init__(
        self, config: GeneratorConfig, batch: int, device: torch.device, dtype: torch.dtype
    ) -> None:
        shape = (batch, config.heads, config.context, config.width // config.heads)
        self.keys = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.layers)]
        self.values = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.layers)]
        self.length = 0  # positions filled
        self.batch = batch


class _Block(nn.Module):
    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.norm1 = nn.LayerNorm(config.width)
        self.qkv = nn.Linear(config.width, 3 * config.width)
        self.proj = nn.Linear(config.width, config.width)
        self.norm2 = nn.LayerNorm(config.width)
        self.mlp = nn.Sequential(
            nn.Linear(config.width, config.mlp_ratio * config.width),
            nn.GELU(),
            nn.Linear(config.mlp_ratio * config.width, config.width),
        )
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, cache: _Cache | None, layer: int) -> torch.Tensor:
        batch, steps, width = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(width, dim=2)
        q, k, v = (t.view(batch, steps, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        dropout = self.dropout if self.training else 0.0
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)
        else:
            start = cache.length
            cache.keys[layer][:, :, start : start + steps] = k
            cache.values[layer][:, :, start : start + steps] = v
            keys = cache.keys[layer][:, :, : start + steps]
            values = cache.values[layer][:, :, : start + steps]
            if steps == 1:  # one new position attends to everything before it
                y = F.scaled_dot_product_attention(q, keys, values)
            else:
                mask = torch.ones(steps, start + steps, dtype=torch.bool, device=x.device)
                mask = mask.tril(diagonal=start)
                y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        y = y.transpose(1, 2).reshape(batch, steps, width)
        x = x + F.dropout(self.proj(y), dropout, self.training)
        return x + F.dropout(self.mlp(self.norm2(x)), dropout, self.training)


class MusicTransformer(nn.Module):
    """Decoder-only transformer over token ids (nanoGPT-shaped, with a KV-cached sampler)."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        if config.width % config.heads:
            raise ValueError(f"width {config.width} is not divisible by heads {config.heads}")
        self.config = config
        self.tokens = nn.Embedding(config.vocab_size, config.width)
        self.positions = nn.Embedding(config.context, config.width)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.layers))
        self.norm = nn.LayerNorm(config.width)
        self.head = nn.Linear(config.width, config.vocab_size, bias=False)
        self.head.weight = self.tokens.weight  # tied input and output embeddings
        self.apply(self._init)
        for name, parameter in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(parameter, 0.0, 0.02 / math.sqrt(2 * config.layers))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, 0.0, 0.02)

    def forward(self, ids: torch.Tensor, cache: _Cache | None = None) -> torch.Tensor:
        """Next-token logits.

        Args:
            ids: (batch, steps) token ids; with a cache, the positions after those cached.
            cache: keys and values of earlier positions (updated in place), or None.

        Returns:
            (batch, steps, vocab_size) float logits.
        """
        start = cache.length if cache is not None else 0
        steps = ids.shape[1]
        if start + steps > self.config.context:
            raise ValueError(f"{start + steps} positions exceed the context {self.config.context}")
        position = torch.arange(start, start + steps, device=ids.device)
        x = self.tokens(ids) + self.positions(position)
        x = F.dropout(x, self.config.dropout, self.training)
        for layer, block in enumerate(self.blocks):
            x = block(x, cache, layer)
        if cache is not None:
            cache.length += steps
        return self.head(self.norm(x))

    @torch.inference_mode()
    def generate(
        self,
        prefix: Sequence[int],
        *,
        params: SamplingParams,
        generator: torch.Generator,
        keep: int = 2,
        window_starts: Collection[int] = (),
        logit_bias: torch.Tensor | Callable[[], torch.Tensor] | None = None,
        stop: Callable[[int], bool] | None = None,
        unconditioned: int | None = None,
    ) -> list[int]:
        """Sample a continuation of `prefix`, one token at a time.

        Args:
            prefix: conditioning and prompt token ids (at least one).
            params: temperature, top-p and the token cap.
            generator: the random source (seed it for reproducible output).
            keep: leading prefix tokens (the conditioning) kept when the window slides.
            window_starts: token ids a slid window may start at after the kept tokens (bar
                lines); empty: anywhere.
            logit_bias: (vocab_size,) added to the logits; -inf forbids a token. A callable
                is asked for the bias of every step (constraints that follow the music).
            stop: called with each new token; True ends the piece (that token is kept).
            unconditioned: the token that replaces the conditioning `prefix[0]` in a second,
                unconditioned run of the same music. With `params.guidance` != 1 the two runs'
                logits c and u give u + guidance * (c - u): classifier-free guidance, which
                pulls the music further toward its condition (the style).

        Returns:
            The new token ids (without the prefix).
        """
        if not prefix:
            raise ValueError("generation needs at least one prefix token")
        self.eval()
        device = self.positions.weight.device
        if device.type == "cpu":
            with one_cpu_thread():
                return self._generate(prefix, params, generator, keep, window_starts,
                                      logit_bias, stop, unconditioned)  # fmt: skip
        return self._generate(
            prefix, params, generator, keep, window_starts, logit_bias, stop, unconditioned
        )

    def _generate(
        self,
        prefix: Sequence[int],
        params: SamplingParams,
        generator: torch.Generator,
        keep: int,
        window_starts: Collection[int],
        logit_bias: torch.Tensor | Callable[[], torch.Tensor] | None,
        stop: Callable[[int], bool] | None,
        unconditioned: int | None,
    ) -> list[int]:
        device = self.positions.weight.device
        context = self.config.context
        history = [int(t) for t in prefix]
        if len(history) > context:
            history = history[:keep] + history[-(context - keep) :]
        guided = unconditioned is not None and params.guidance != 1.0

        def start(history: list[int]) -> tuple[torch.Tensor, _Cache]:
            """Logits after a fresh pass over `history` (and its unconditioned twin), cache."""
            rows = [history, [unconditioned, *history[1:]]] if guided else [history]
            cache = _Cache(self.config, len(rows), device, self.positions.weight.dtype)
            return mix(self(torch.tensor(rows, device=device), cache)), cache

        def mix(out: torch.Tensor) -> torch.Tensor:
            last = out[:, -1].float()
            return last[1] + params.guidance * (last[0] - last[1]) if guided else last[0]

        logits, cache = start(history)
        new: list[int] = []
        while len(new) < params.max_new_tokens:
            bias = logit_bias() if callable(logit_bias) else logit_bias
            token = sample_token(logits, params, generator, bias)
            new.append(token)
            history.append(token)
            if stop is not None and stop(token):
                break
            if cache.length >= context:  # slide: conditioning + the latest half, from a bar
                history = _window(history, keep, context // 2, window_starts)
                logits, cache = start(history)
            else:
                logits = mix(self(torch.tensor([[token]] * cache.batch, device=device), cache))
        return new

    def save(self, path: str | Path, *, vocab: list[str], meta: dict[str, Any]) -> None:
        """Write a slim self-describing checkpoint (weights, config, vocabulary, metadata)."""
        torch.save(
            {
                "kind": KIND,
                "state_dict": self.state_dict(),
                "config": asdict(self.config),
                "vocab": list(vocab),
                "version": CHECKPOINT_VERSION,
                **meta,
            },
            path,
        )

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, *, device: str | torch.device = "cpu"
    ) -> tuple[MusicTransformer, dict[str, Any]]:
        """Rebuild a generator from its checkpoint.

        Returns:
            (model in eval mode, the checkpoint's other entries: vocab, styles, metrics, ...).

        Raises:
            ModelUnavailable: when the file is missing or not a generator checkpoint.
        """
        if not Path(path).is_file():
            raise ModelUnavailable(
                f"The generator's weights {path} are missing. Reinstall the studio or retrain "
                "the generator (see checkpoints/generator.md)."
            )
        try:
            stored = torch.load(path, map_location=device, weights_only=True)
            if stored.get("kind") != KIND:
                raise ValueError("not a music generator checkpoint")
            model = cls(GeneratorConfig(**stored.pop("config")))
            model.load_state_dict(stored.pop("state_dict"))
        except (
            KeyError,
            TypeError,
            RuntimeError,
            ValueError,
            AttributeError,
            OSError,
            EOFError,
            pickle.UnpicklingError,
        ) as err:
            raise ModelUnavailable(
                f"The generator's weights {path} could not be read ({err})."
            ) from None
        return model.to(device).eval(), stored


@contextlib.contextmanager
def one_cpu_thread() -> Iterator[None]:
    """Run torch on one CPU thread inside the block (the setting is restored after).

    Sampling does one small step at a time, too little work to share: extra threads only wait
    on each other (60x slower on a busy 2-core machine). One thread is also one summation
    order, so the same seed gives the same music whatever the machine's thread setting.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def sample_token(
    logits: torch.Tensor,
    params: SamplingParams,
    generator: torch.Generator,
    bias: torch.Tensor | None,
) -> int:
    """One token from temperature-scaled, nucleus-filtered logits."""
    if bias is not None:
        logits = logits + bias.to(device=logits.device, dtype=logits.dtype)
    probs = torch.softmax(logits / params.temperature, dim=-1)
    ordered, order = torch.sort(probs, descending=True, stable=True)
    cumulative = torch.cumsum(ordered, dim=-1)
    outside = cumulative - ordered >= params.top_p  # mass before a token already reaches top_p
    ordered = ordered.masked_fill(outside, 0.0)
    choice = torch.multinomial(ordered.cpu(), 1, generator=generator)
    return int(order[int(choice)])


def _window(history: list[int], keep: int, length: int, starts: Collection[int]) -> list[int]:
    """The kept conditioning plus about the last `length` tokens, from a bar line if possible."""
    tail_from = max(keep, len(history) - length)
    if starts:
        for i in range(tail_from, len(history)):
            if history[i] in starts:
                tail_from = i
                break
    return history[:keep] + history[tail_from:]
