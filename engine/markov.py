"""The baseline generator: a per-style n-gram Markov chain over the generator's tokens.

Probabilities are Witten-Bell interpolated from the longest context down to a smoothed unigram,
so they are normalised: held-out perplexity is comparable with the transformer's. The chain has
the transformer's `generate()` signature, so `engine.generate.generate` drives either one (same
grammar constraints, lengths, tempo, prompts) and a comparison differs only in the model.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ModelUnavailable
from engine.models.generator import one_cpu_thread, sample_token

KIND = "markov-chain"
VERSION = 1


@dataclass(frozen=True)
class MarkovConfig:
    """Shape of a Markov chain; stored in its file."""

    order: int = 5  # n of the n-grams: the next token is predicted from the n-1 before it
    min_count: int = 2  # contexts (of two or more tokens) seen fewer times are dropped
    vocab_size: int = 512  # the tokenizer's vocabulary


BITS = 10  # bits per token in a packed context key: vocabularies up to 1024 tokens
MAX_ORDER = 6  # contexts of up to 5 tokens fit in one int64


def context_key(tokens: Sequence[int] | np.ndarray) -> int:
    """Pack token ids into one integer, the first token in the highest bits."""
    key = 0
    for token in tokens:
        key = (key << BITS) | int(token)
    return key


class _Table:
    """Continuations of every context of one length for one style, sorted by packed key."""

    def __init__(
        self, keys: np.ndarray, offsets: np.ndarray, tokens: np.ndarray, counts: np.ndarray
    ) -> None:
        self.keys = keys  # (n,) int64 packed contexts, ascending
        self.offsets = offsets  # (n + 1,) int64: continuations of context i are [o_i, o_i+1)
        self.tokens = tokens  # int16 next tokens
        self.counts = counts  # int32 their counts

    def lookup(self, context: Sequence[int]) -> tuple[np.ndarray, np.ndarray] | None:
        key = context_key(context)
        i = int(np.searchsorted(self.keys, key))
        if i >= len(self.keys) or self.keys[i] != key:
            return None
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.tokens[a:b], self.counts[a:b]


class MarkovChain:
    """Per-style n-gram model; the style is the first token of every sequence."""

    def __init__(
        self,
        config: MarkovConfig,
        unigrams: dict[int, np.ndarray],
        tables: dict[int, list[_Table]],
    ) -> None:
        self.config = config
        self.unigrams = unigrams  # style id -> (vocab,) float64 smoothed unigram probabilities
        self.tables = tables  # style id -> tables for context lengths 1..order-1

    # ----------------------------------------------------------------------------------------
    # Fitting

    @classmethod
    def fit(cls, sequences: Iterable[Sequence[int]], config: MarkovConfig) -> MarkovChain:
        """Count n-grams of sequences that each start with their style token.

        Args:
            sequences: token ids; element 0 is the style token (it selects the tables and is
                also part of the first contexts).
            config: order, pruning and vocabulary size.
        """
        if config.vocab_size > 2**BITS or not 2 <= config.order <= MAX_ORDER:
            raise ValueError(f"vocabulary <= {2**BITS} and order 2..{MAX_ORDER} are supported")
        by_style: dict[int, list[np.ndarray]] = defaultdict(list)
        for sequence in sequences:
            ids = np.asarray(sequence, dtype=np.int64)
            by_style[int(ids[0])].append(ids)
        unigrams, tables = {}, {}
        for style, sequences_ in by_style.items():
            counts = np.zeros(config.vocab_size, dtype=np.float64)
            for ids in sequences_:
                np.add.at(counts, ids[1:], 1.0)
            unigrams[style] = (counts + 1.0) / (counts.sum() + len(counts))
            tables[style] = [
                _count(sequences_, n, 1 if n == 2 else config.min_count)
                for n in range(2, config.order + 1)
            ]
        return cls(config, unigrams, tables)

    # ----------------------------------------------------------------------------------------
    # Probabilities

    def distribution(self, history: Sequence[int], style: int) -> np.ndarray:
        """P(next token | history) for a style: Witten-Bell interpolation over context lengths."""
        probs = self.unigrams[style].copy()
        tables = self.tables[style]
        history = list(history[-(self.config.order - 1) :])
        for length in range(1, min(len(history), self.config.order - 1) + 1):
            found = tables[length - 1].lookup(history[-length:])
            if found is None:
                break  # a longer context cannot have been seen either
            tokens, counts = found
            total, types = float(counts.sum()), float(len(tokens))
            mixed = probs * (types / (total + types))
            np.add.at(mixed, tokens.astype(np.int64), counts / (total + types))
            probs = mixed
        return probs

    def log_likelihood(self, sequence: Sequence[int]) -> tuple[float, int]:
        """Sum of natural-log probabilities of tokens 1.. of a sequence (style first), and
        how many tokens were scored."""
        ids = [int(t) for t in sequence]
        total = 0.0
        for i in range(1, len(ids)):
            total += float(np.log(max(self.distribution(ids[:i], ids[0])[ids[i]], 1e-12)))
        return total, len(ids) - 1

    # ----------------------------------------------------------------------------------------
    # Sampling, with the transformer's interface

    def eval(self) -> MarkovChain:
        """No-op (the transformer's interface)."""
        return self

    def generate(
        self,
        prefix: Sequence[int],
        *,
        params: Any,
        generator: np.random.Generator,
        keep: int = 2,
        window_starts: Collection[int] = (),
        logit_bias: np.ndarray | Callable[[], np.ndarray] | None = None,
        stop: Callable[[int], bool] | None = None,
    ) -> list[int]:
        """Sample a continuation of `prefix` (see MusicTransformer.generate; the window
        arguments are accepted and unused: the chain only looks back order-1 tokens)."""
        history = [int(t) for t in prefix]
        style = history[0]
        if style not in self.tables:
            raise ValueError(f"the chain has no tables for style token {style}")
        new: list[int] = []
        with one_cpu_thread():  # tiny tensors, one token at a time: as the transformer does
            while len(new) < params.max_new_tokens:
                logits = np.log(np.maximum(self.distribution(history, style), 1e-30))
                bias = logit_bias() if callable(logit_bias) else logit_bias
                token = sample_token(logits, params, generator, bias)
                new.append(token)
                history.append(token)
                if stop is not None and stop(token):
                    break
        return new

    # ----------------------------------------------------------------------------------------
    # Files

    def save(self, path: str | Path, *, vocab: list[str], meta: dict[str, Any]) -> None:
        """Write the chain as one compressed .npz (counts as int32, tokens as int16)."""
        arrays: dict[str, np.ndarray] = {}
        styles = sorted(self.tables)
        for style in styles:
            arrays[f"unigram_{style}"] = self.unigrams[style].astype(np.float32)
            for length, table in enumerate(self.tables[style], start=1):
                arrays[f"ctx_{style}_{length}"] = table.keys
                arrays[f"off_{style}_{length}"] = table.offsets
                arrays[f"tok_{style}_{length}"] = table.tokens
                arrays[f"cnt_{style}_{length}"] = table.counts
        header = {
            "kind": KIND,
            "version": VERSION,
            "config": self.config.__dict__,
            "styles": styles,
            "vocab": list(vocab),
            **meta,
        }
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
        with Path(path).open("wb") as f:
            np.savez_compressed(f, **arrays)

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> tuple[MarkovChain, dict[str, Any]]:
        """Load a chain saved with `save`.

        Returns:
            (chain, header: vocab, styles, metrics, ...).

        Raises:
            ModelUnavailable: when the file is missing or is not a Markov chain.
        """
        if not Path(path).is_file():
            raise ModelUnavailable(
                f"The Markov baseline {path} is missing; rebuild it with "
                "python -m engine.train.markov."
            )
        try:
            with np.load(path) as data:
                header = json.loads(bytes(data["header"]).decode())
                if header.get("kind") != KIND:
                    raise ValueError("not a Markov chain file")
                config = MarkovConfig(**header["config"])
                unigrams, tables = {}, {}
                for style in header["styles"]:
                    unigrams[style] = data[f"unigram_{style}"].astype(np.float64)
                    tables[style] = [
                        _Table(
                            data[f"ctx_{style}_{n}"],
                            data[f"off_{style}_{n}"],
                            data[f"tok_{style}_{n}"],
                            data[f"cnt_{style}_{n}"],
                        )
                        for n in range(1, config.order)
                    ]
        except (KeyError, ValueError, OSError, TypeError) as err:
            raise ModelUnavailable(
                f"The Markov baseline {path} could not be read ({err})."
            ) from None
        return cls(config, unigrams, tables), header


def _count(sequences: Sequence[np.ndarray], n: int, min_count: int) -> _Table:
    """The n-grams of sequences as a table of (n-1)-token contexts seen >= min_count times."""
    from numpy.lib.stride_tricks import sliding_window_view

    packed = []
    weights = np.array([1 << (BITS * (n - 1 - j)) for j in range(n)], dtype=np.int64)
    for ids in sequences:
        if len(ids) >= n:
            packed.append(sliding_window_view(ids, n) @ weights)
    if not packed:
        empty = np.zeros(0, dtype=np.int64)
        return _Table(empty, np.zeros(1, dtype=np.int64), empty.astype(np.int16),
                      empty.astype(np.int32))  # fmt: skip
    grams, counts = np.unique(np.concatenate(packed), return_counts=True)
    contexts = grams >> BITS
    starts = np.flatnonzero(np.r_[True, contexts[1:] != contexts[:-1]])
    totals = np.add.reduceat(counts, starts)
    keep_group = totals >= min_count
    group_of = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(grams)]))
    keep = keep_group[group_of]
    kept_starts = starts[keep_group]
    sizes = np.diff(np.r_[starts, len(grams)])[keep_group]
    return _Table(
        keys=contexts[kept_starts],
        offsets=np.r_[0, np.cumsum(sizes)].astype(np.int64),
        tokens=(grams[keep] & ((1 << BITS) - 1)).astype(np.int16),
        counts=counts[keep].astype(np.int32),
    )
