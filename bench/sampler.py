"""Benchmark of the generator's sampler on a CPU (issue 3, speed): the numba-compiled forward
that sampling uses against the torch model it replaced, side by side in one run.

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python -m bench.sampler --out bench/results/sampler.json

Both run the shipped generator over the same `--tokens` token ids, one position at a time after
a two-token prefix, sliding the window as sampling does (past the context, a fresh pass over the
conditioning and the latest half); with one row, and with two (style strength != 1 runs the
unconditioned twin beside it). The ids are drawn at random: the work per position does not
depend on which tokens they are. Figures: wall ms for all the tokens (median of `--repeats`
runs, after a warm-up run), ms per token, the speed-up, and the largest difference between the
two runners' logits.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import rounded, write_figures

RUNNERS = ("torch", "compiled")


def pass_over(run: Any, ids: np.ndarray, context: int) -> np.ndarray:
    """Logits of every position of `ids` (rows, tokens), one position at a time."""
    from engine.models.generator import _window

    history = [list(row[:2]) for row in ids]
    run.reset(len(ids))
    logits = [run(history)]
    for i in range(2, ids.shape[1]):
        token = [[int(t)] for t in ids[:, i]]
        for row, (t,) in zip(history, token, strict=True):
            row.append(t)
        if run.length >= context:
            history = [_window(row, 2, context // 2, ()) for row in history]
            run.reset(len(ids))
            logits.append(run(history))
        else:
            logits.append(run(token))
    return np.stack(logits)


def run(tokens: int, repeats: int, seed: int) -> dict[str, Any]:
    """Time both runners over the same ids with one and two rows."""
    import torch

    from engine.generate import default_generator
    from engine.models.generator import _CompiledRunner, _TorchRunner, one_cpu_thread

    model = default_generator().model
    config = model.config
    rng = np.random.default_rng(seed)
    figures: dict[str, Any] = {"tokens": tokens, "repeats": repeats, "context": config.context}
    with torch.inference_mode(), one_cpu_thread():
        for rows in (1, 2):
            ids = rng.integers(0, config.vocab_size, (rows, tokens))
            row: dict[str, Any] = {}
            outputs = {}
            for name, runner in zip(RUNNERS, (_TorchRunner(model), _CompiledRunner(model)),
                                    strict=True):  # fmt: skip
                outputs[name] = pass_over(runner, ids, config.context)  # warm-up
                times = []
                for _ in range(repeats):
                    started = time.perf_counter()
                    pass_over(runner, ids, config.context)
                    times.append(time.perf_counter() - started)
                wall = statistics.median(times)
                row[name] = {"wall_ms": 1000 * wall, "ms_per_token": 1000 * wall / tokens}
                print(f"{rows} row(s), {name}: {1000 * wall:.0f} ms", file=sys.stderr)
            row["speedup"] = row["torch"]["wall_ms"] / row["compiled"]["wall_ms"]
            difference = np.abs(outputs["torch"] - outputs["compiled"]).max()
            row["max_logit_difference"] = f"{difference:.1e}"  # rounding: kept as text
            figures[f"rows_{rows}"] = row
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=1200, help="positions per pass")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/sampler.json"))
    args = parser.parse_args(argv)
    if args.tokens < 3 or args.repeats < 1:
        parser.error("--tokens must be at least 3 and --repeats at least 1")
    write_figures(rounded(run(args.tokens, args.repeats, args.seed), 4), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
