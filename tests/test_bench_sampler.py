"""bench/sampler.py: both runners over the same ids, through a window slide, on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bench import sampler
from engine.models.generator import (
    GeneratorConfig,
    MusicTransformer,
    _CompiledRunner,
    _TorchRunner,
)


def test_pass_over_slides_the_window_and_runners_agree() -> None:
    torch.manual_seed(0)
    model = MusicTransformer(GeneratorConfig(vocab_size=30, context=16, layers=2, heads=2,
                                             width=16, dropout=0.0)).eval()  # fmt: skip
    ids = np.random.default_rng(0).integers(0, 30, (2, 40))
    with torch.inference_mode():
        fast = sampler.pass_over(_CompiledRunner(model), ids, 16)
        reference = sampler.pass_over(_TorchRunner(model), ids, 16)
    assert fast.shape == (39, 2, 30)  # the prefix's logits, then one per further position
    np.testing.assert_allclose(fast, reference, rtol=1e-4, atol=1e-5)  # slides included


def test_main_writes_both_runners(tmp_path: Path) -> None:
    out = tmp_path / "sampler.json"
    assert sampler.main(["--tokens", "20", "--repeats", "1", "--out", str(out)]) == 0
    figures = json.loads(out.read_text())
    for rows in ("rows_1", "rows_2"):
        assert set(figures[rows]) >= {"torch", "compiled", "speedup", "max_logit_difference"}
        assert float(figures[rows]["max_logit_difference"]) < 1e-3
        assert figures[rows]["compiled"]["ms_per_token"] > 0


def test_main_rejects_too_few_tokens() -> None:
    with pytest.raises(SystemExit):
        sampler.main(["--tokens", "2"])
