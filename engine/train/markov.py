"""Fit the Markov-chain baseline on the generator's training pieces, and write its card.

    python -m engine.train.markov --data ../shared/data --order 5

Same corpus, tokens, split and conditioning as the transformer (style token, then the piece's
first tempo token); held-out perplexity is measured on the same held-out windows.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.generate import MARKOV_NAME, STYLES
from engine.markov import MarkovChain, MarkovConfig
from engine.midi import TOKENIZER_FILE
from engine.train.dataset import default_cache_dir
from engine.train.generator import (
    PREFIX,
    TrainConfig,
    Windows,
    corpus_summary,
    style_tempos,
)
from engine.train.generator_data import CorpusConfig, build, corpus_dir, tokenise


def heldout_perplexity(
    chain: MarkovChain, windows: dict[str, np.ndarray], pad: int
) -> dict[str, float]:
    """Per-style perplexity over the transformer's held-out windows (padding left out)."""
    out = {}
    for style, rows in windows.items():
        total, count = 0.0, 0
        for row in np.asarray(rows):
            ids = [int(t) for t in row if t != pad]
            log_likelihood, n = chain.log_likelihood(ids)
            total += log_likelihood
            count += n
        out[style] = round(math.exp(-total / max(count, 1)), 3)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Fit, evaluate and save the chain; prints its metrics as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
    parser.add_argument("--order", type=int, default=MarkovConfig.order)
    parser.add_argument("--min-count", type=int, default=MarkovConfig.min_count)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    cache = args.cache if args.cache is not None else default_cache_dir()
    if not (corpus_dir(cache) / "index.json").is_file():
        build(CorpusConfig(data_dir=args.data, cache_dir=cache))
    tokenizer, pieces = tokenise(cache)
    defaults = TrainConfig()
    windows = Windows(pieces, tokenizer, defaults.context)
    sequences = [
        np.concatenate([windows.window(p, 0)[:PREFIX], p.ids.astype(np.int64)])
        for p in pieces
        if p.piece.split == "train"
    ]
    config = MarkovConfig(
        order=args.order, min_count=args.min_count, vocab_size=len(tokenizer.vocab)
    )
    chain = MarkovChain.fit(sequences, config)
    evaluation = {s: rows.numpy() for s, rows in windows.evaluation(defaults.eval_tokens).items()}
    perplexity = heldout_perplexity(chain, evaluation, windows.pad)
    metrics = {"heldout_perplexity": perplexity}
    summary = corpus_summary(pieces)
    args.checkpoints.mkdir(parents=True, exist_ok=True)
    path = args.checkpoints / MARKOV_NAME
    chain.save(
        path,
        vocab=[tokenizer[i] for i in range(len(tokenizer.vocab))],
        meta={"style_tempos": style_tempos(pieces), "metrics": metrics, "corpus": summary},
    )
    if not (args.checkpoints / TOKENIZER_FILE).is_file():
        tokenizer.save(args.checkpoints / TOKENIZER_FILE)
    write_card(args.checkpoints / "markov.md", config, path, perplexity, summary, defaults)
    print(json.dumps({**metrics, "bytes": path.stat().st_size,
                      "seconds": round(time.perf_counter() - started, 1)}))  # fmt: skip
    return 0


def write_card(
    path: Path,
    config: MarkovConfig,
    chain_path: Path,
    perplexity: dict[str, float],
    summary: dict[str, dict[str, int]],
    defaults: TrainConfig,
) -> None:
    """The baseline's model card."""
    rows = "\n".join(
        f"| {s} | {summary[s]['train_pieces']} | {summary[s]['train_tokens']:,} | "
        f"{perplexity.get(s, float('nan')):.2f} |"
        for s in STYLES
    )
    path.write_text(f"""# Markov-chain baseline (`{chain_path.name}`)

The generator's baseline: one n-gram model per style (order {config.order}: the next token from
the {config.order - 1} before it; contexts of two or more tokens seen fewer than
{config.min_count} times dropped), Witten-Bell interpolated down to an add-one unigram, over the
same miditok REMI tokens (`{TOKENIZER_FILE}`) and the same training pieces as `generator.pt`
(see `generator.md` for the data and its licences). `engine.generate.load_markov()` loads it as
a generator that `engine.generate.generate` drives with the same grammar constraints, lengths
and tempos as the transformer. {chain_path.stat().st_size / 2**20:.1f} MiB.

| style | train pieces | train tokens | held-out perplexity |
|---|---|---|---|
{rows}

Held-out perplexity: on the transformer's held-out windows (up to {defaults.eval_tokens:,}
tokens per style, windows of {defaults.context} tokens from each held-out piece's start).

Rebuild: `.venv/bin/python -m engine.train.markov --data ../shared/data --order {config.order}
--min-count {config.min_count}`
""")


if __name__ == "__main__":
    sys.exit(main())
