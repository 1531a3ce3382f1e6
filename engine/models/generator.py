"""The music generator: a small decoder-only transformer over REMI tokens, and its sampler.

A sequence starts with a style token and a tempo token (the conditioning), then the piece's
tokens. Sampling keeps a key/value cache per layer, so each new token costs one position's
worth of work; past the context length the window slides, re-primed at a bar line. On a CPU
the sampler runs the same arithmetic compiled by numba (`_CompiledRunner`): one position is a
few small matrix products, where torch's per-call overhead would cost more than the maths.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  numba's BLAS, loaded early (see one_cpu_thread)
import torch
import torch.nn.functional as F
from numba import njit
from threadpoolctl import threadpool_limits
from torch import nn

from engine.models import load_checkpoint

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
        generator: np.random.Generator,
        keep: int = 2,
        window_starts: Collection[int] = (),
        logit_bias: np.ndarray | Callable[[], np.ndarray] | None = None,
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
            logit_bias: (vocab_size,) float array added to the logits; -inf forbids a token.
                A callable is asked for the bias of every step (constraints that follow the
                music).
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
        generator: np.random.Generator,
        keep: int,
        window_starts: Collection[int],
        logit_bias: np.ndarray | Callable[[], np.ndarray] | None,
        stop: Callable[[int], bool] | None,
        unconditioned: int | None,
    ) -> list[int]:
        context = self.config.context
        history = [int(t) for t in prefix]
        if len(history) > context:
            history = history[:keep] + history[-(context - keep) :]
        guided = unconditioned is not None and params.guidance != 1.0
        on_cpu = self.positions.weight.device.type == "cpu"
        run = _CompiledRunner(self) if on_cpu else _TorchRunner(self)

        def start(history: list[int]) -> np.ndarray:
            """Logits after a fresh pass over `history` (and its unconditioned twin)."""
            rows = [history, [unconditioned, *history[1:]]] if guided else [history]
            run.reset(len(rows))
            return mix(run(rows))

        def mix(last: np.ndarray) -> np.ndarray:
            return last[1] + params.guidance * (last[0] - last[1]) if guided else last[0]

        logits = start(history)
        new: list[int] = []
        while len(new) < params.max_new_tokens:
            bias = logit_bias() if callable(logit_bias) else logit_bias
            token = sample_token(logits, params, generator, bias)
            new.append(token)
            history.append(token)
            if stop is not None and stop(token):
                break
            if run.length >= context:  # slide: conditioning + the latest half, from a bar
                history = _window(history, keep, context // 2, window_starts)
                logits = start(history)
            else:
                logits = mix(run([[token]] * run.batch))
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

        def build(stored: dict) -> MusicTransformer:
            if stored.get("kind") != KIND:
                raise ValueError("not a music generator checkpoint")
            model = cls(GeneratorConfig(**stored.pop("config")))
            model.load_state_dict(stored.pop("state_dict"))
            return model

        return load_checkpoint(
            path,
            build,
            device=device,
            name="The generator's weights",
            missing="are missing. Reinstall the studio or retrain the generator (see "
            "checkpoints/generator.md).",
        )


class _TorchRunner:
    """The model itself with a key/value cache: last-position logits of each step (a GPU)."""

    def __init__(self, model: MusicTransformer) -> None:
        self.model = model
        self.cache: _Cache | None = None

    def reset(self, batch: int) -> None:
        """Forget every position; the next call starts at position 0 with `batch` rows."""
        weight = self.model.positions.weight
        self.cache = _Cache(self.model.config, batch, weight.device, weight.dtype)

    @property
    def length(self) -> int:
        """Positions cached."""
        return self.cache.length if self.cache is not None else 0

    @property
    def batch(self) -> int:
        """Rows run side by side."""
        return self.cache.batch if self.cache is not None else 0

    def __call__(self, ids: list[list[int]]) -> np.ndarray:
        """(batch, vocab_size) logits after `ids`, the positions after those cached."""
        device = self.model.positions.weight.device
        out = self.model(torch.tensor(ids, device=device), self.cache)
        return out[:, -1].float().cpu().numpy()


class _CompiledRunner:
    """The model's forward compiled by numba over numpy copies of its weights, with a
    key/value cache (a CPU).

    The same computation as `MusicTransformer.forward` in eval mode, on float32 weights and
    activations, so the logits agree to rounding. One position through torch is some two
    hundred small calls whose overhead outweighs their maths; compiled, it is a few matrix
    products and loops (docs/benchmarks.md, "The sampler"). The first call of a process loads
    the compiled code from numba's cache, or compiles it (some 10 s) when the cache is missing
    or stale: `make setup` fills it.
    """

    def __init__(self, model: MusicTransformer) -> None:
        config = model.config
        weights = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}

        def stack(name: str, transpose: bool = False) -> np.ndarray:
            """One array of every block's `name`, linear weights as (in, out)."""
            arrays = [weights[f"blocks.{i}.{name}"] for i in range(config.layers)]
            return np.ascontiguousarray(np.stack([a.T if transpose else a for a in arrays]))

        self.weights = (
            weights["tokens.weight"],
            weights["positions.weight"],
            np.stack([stack(f"norm{n}.{p}") for n in (1, 2) for p in ("weight", "bias")], 1),
            stack("qkv.weight", True),
            stack("qkv.bias"),
            stack("proj.weight", True),
            stack("proj.bias"),
            stack("mlp.0.weight", True),
            stack("mlp.0.bias"),
            stack("mlp.2.weight", True),
            stack("mlp.2.bias"),
            np.stack([weights["norm.weight"], weights["norm.bias"]]),
            np.ascontiguousarray(weights["head.weight"].T),
        )
        self.config = config
        self.keys = self.values = np.zeros((config.layers, 0, config.heads, 0, 0), np.float32)
        self.length = 0

    @property
    def batch(self) -> int:
        """Rows run side by side."""
        return self.keys.shape[1]

    def reset(self, batch: int) -> None:
        """Forget every position; the next call starts at position 0 with `batch` rows."""
        c = self.config
        shape = (c.layers, batch, c.heads, c.context, c.width // c.heads)
        self.keys = np.zeros(shape, np.float32)
        self.values = np.zeros(shape, np.float32)
        self.length = 0

    def __call__(self, ids: list[list[int]]) -> np.ndarray:
        """(batch, vocab_size) logits after `ids`, the positions after those cached."""
        tokens = np.asarray(ids, dtype=np.int64)
        if tokens.ndim != 2 or tokens.shape[0] != self.batch or tokens.shape[1] == 0:
            raise ValueError(f"ids must be {self.batch} rows of one or more token ids")
        end = self.length + tokens.shape[1]
        if end > self.config.context:
            raise ValueError(f"{end} positions exceed the context {self.config.context}")
        if tokens.size and not 0 <= tokens.min() <= tokens.max() < self.config.vocab_size:
            raise ValueError(f"token ids outside the vocabulary of {self.config.vocab_size}")
        logits = _forward(tokens, self.length, *self.weights, self.keys, self.values)
        self.length = end
        return logits


def compile_sampler() -> None:
    """Compile the CPU sampler's kernel now (or load it from numba's cache), so that the first
    generation does not wait for it (`make setup` runs this)."""
    config = GeneratorConfig(vocab_size=8, context=4, layers=1, heads=1, width=4)
    run = _CompiledRunner(MusicTransformer(config).eval())
    run.reset(1)
    run([[1, 2]])
    run([[3]])


@njit(cache=True, nogil=True)
def _norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """nn.LayerNorm of each row (eps 1e-5; mean and scale taken in float64)."""
    out = np.empty_like(x)
    width = x.shape[1]
    for i in range(x.shape[0]):
        mean = x[i].sum() / width
        centred = x[i] - mean
        scale = 1.0 / np.sqrt((centred * centred).sum() / width + 1e-5)
        out[i] = centred * scale * weight + bias
    return out


GEMV_ROWS = 8  # products of at most this many rows run row by row (see _dot)


@njit(cache=True, nogil=True)
def _dot(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """x @ weight; a few rows (one sampling step) as one matrix-vector product each, which
    some CPUs' BLAS runs several times faster than one small matrix product (docs/benchmarks.md,
    "The sampler")."""
    if x.shape[0] > GEMV_ROWS:
        return np.dot(x, weight)
    out = np.empty((x.shape[0], weight.shape[1]), np.float32)
    for i in range(x.shape[0]):
        out[i] = np.dot(x[i], weight)
    return out


@njit(cache=True, nogil=True)
def _forward(
    ids: np.ndarray,
    start: int,
    tokens: np.ndarray,
    positions: np.ndarray,
    norms: np.ndarray,
    qkv_w: np.ndarray,
    qkv_b: np.ndarray,
    proj_w: np.ndarray,
    proj_b: np.ndarray,
    up_w: np.ndarray,
    up_b: np.ndarray,
    down_w: np.ndarray,
    down_b: np.ndarray,
    final_norm: np.ndarray,
    head: np.ndarray,
    keys: np.ndarray,
    values: np.ndarray,
) -> np.ndarray:
    """Last-position logits (batch, vocab) after `ids` (batch, steps) at positions start..;
    their keys and values are written into the caches (layers, batch, heads, context, dim)."""
    batch, steps = ids.shape
    width = tokens.shape[1]
    heads, dim = keys.shape[2], keys.shape[4]
    scale = np.float32(1.0 / np.sqrt(dim))
    x = np.empty((batch * steps, width), np.float32)
    for b in range(batch):
        for t in range(steps):
            x[b * steps + t] = tokens[ids[b, t]] + positions[start + t]
    attended = np.empty_like(x)
    for layer in range(keys.shape[0]):
        qkv = _dot(_norm(x, norms[layer, 0], norms[layer, 1]), qkv_w[layer]) + qkv_b[layer]
        for b in range(batch):
            rows = qkv[b * steps : (b + 1) * steps]
            for h in range(heads):
                key_from, value_from = width + h * dim, 2 * width + h * dim
                for t in range(steps):
                    keys[layer, b, h, start + t] = rows[t, key_from : key_from + dim]
                    values[layer, b, h, start + t] = rows[t, value_from : value_from + dim]
                for t in range(steps):  # position start + t sees itself and those before
                    seen = start + t + 1
                    query = np.ascontiguousarray(rows[t, h * dim : (h + 1) * dim])
                    scores = np.dot(keys[layer, b, h, :seen], query) * scale
                    weights = np.exp(scores - scores.max())
                    weights /= weights.sum()
                    attended[b * steps + t, h * dim : (h + 1) * dim] = np.dot(
                        weights, values[layer, b, h, :seen]
                    )
        x = x + _dot(attended, proj_w[layer]) + proj_b[layer]
        hidden = _dot(_norm(x, norms[layer, 2], norms[layer, 3]), up_w[layer]) + up_b[layer]
        for i in range(hidden.shape[0]):
            for j in range(hidden.shape[1]):  # exact GELU: x * Phi(x)
                hidden[i, j] *= 0.5 * (1.0 + math.erf(hidden[i, j] * 0.7071067811865476))
        x = x + _dot(hidden, down_w[layer]) + down_b[layer]
    last = np.empty((batch, width), np.float32)
    for b in range(batch):
        last[b] = x[(b + 1) * steps - 1]
    return _dot(_norm(last, final_norm[0], final_norm[1]), head)


@contextlib.contextmanager
def one_cpu_thread() -> Iterator[None]:
    """Run torch and the BLAS libraries on one CPU thread inside the block (restored after).

    Sampling does one small step at a time, too little work to share: extra threads only wait
    on each other (60x slower on a busy 2-core machine). One thread is also one summation
    order, so the same seed gives the same music whatever the machine's thread setting. The
    limit reaches only libraries already loaded: scipy's BLAS, which the compiled sampler's
    matrix products call, is imported with this module.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(threads)


def sample_token(
    logits: np.ndarray,
    params: SamplingParams,
    generator: np.random.Generator,
    bias: np.ndarray | None,
) -> int:
    """One token from temperature-scaled, nucleus-filtered logits (a (vocab,) array)."""
    scaled = np.asarray(logits, dtype=np.float64)
    if bias is not None:
        scaled = scaled + bias
    scaled = scaled / params.temperature
    top = scaled.max()
    if not np.isfinite(top):  # every token forbidden (or NaN logits)
        raise ValueError("no token may be sampled: every one is forbidden")
    probs = np.exp(scaled - top)
    probs /= probs.sum()
    order = np.argsort(-probs, kind="stable")
    ordered = probs[order]
    cumulative = np.cumsum(ordered)
    # the nucleus: tokens whose preceding mass is still below top_p (at least the first)
    nucleus = max(1, int(np.count_nonzero(cumulative - ordered < params.top_p)))
    draw = generator.random() * cumulative[nucleus - 1]
    choice = min(int(np.searchsorted(cumulative[:nucleus], draw, side="right")), nucleus - 1)
    return int(order[choice])


def _window(history: list[int], keep: int, length: int, starts: Collection[int]) -> list[int]:
    """The kept conditioning plus about the last `length` tokens, from a bar line if possible."""
    tail_from = max(keep, len(history) - length)
    if starts:
        for i in range(tail_from, len(history)):
            if history[i] in starts:
                tail_from = i
                break
    return history[:keep] + history[tail_from:]
