"""Tests of engine.models.taggers (and the patch rows engine.train.tagger_cache makes of them).

Randomly initialised models over synthesised audio; nothing needs ../shared or the converted
weights (engine.train.convert_taggers checks those against the reference architectures).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import ModelUnavailable
from engine.features import cut_patches, encoder_log_mel
from engine.models.taggers import CHECKPOINT_VERSION, Tagger, TaggerConfig, cut_inputs
from engine.train.tagger_cache import on_patches

STUDIO_RATE = 22_050
CNN = TaggerConfig("cnn", 12_000, pad_mode="constant", input_frames=1366, spread_inputs=True,
                   n_tags=56, activation="elu")  # fmt: skip
MUSICNN = TaggerConfig("musicnn", 16_000, input_frames=187)


def _music(seconds: float, rng: np.random.Generator, rate: int = STUDIO_RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    y = 0.2 * np.sin(2 * np.pi * 220.0 * t) * np.exp(-0.5 * (t % 1.0))
    return (y + 0.01 * rng.normal(size=len(t))).astype(np.float32)


def _random_tagger(config: TaggerConfig) -> Tagger:
    torch.manual_seed(0)
    model = Tagger(config, tuple(f"tag{i}" for i in range(config.n_tags)))
    model.mel_filters.uniform_(0.0, 0.01)
    return model.eval()


def test_config_round_trips_through_a_plain_dict() -> None:
    assert TaggerConfig.from_dict(CNN.to_dict()) == CNN
    with pytest.raises(ValueError):
        TaggerConfig.from_dict({**CNN.to_dict(), "bogus": 1})


def test_inputs_follow_each_other_or_spread_and_short_clips_repeat() -> None:
    mel = torch.arange(10.0)[None].repeat(3, 1)
    inputs, starts = cut_inputs(mel, 4)
    assert starts.tolist() == [0, 4, 6] and inputs.shape == (3, 3, 4)
    assert cut_inputs(mel, 4, spread=True)[1].tolist() == [0, 6]  # round(10 / 4) = 2 inputs
    assert cut_inputs(mel, 8, spread=True)[1].tolist() == [1]  # one: the centred crop
    short, starts = cut_inputs(mel[:, :3], 7, spread=True)
    assert starts.tolist() == [0] and short[0, 0].tolist() == [0, 1, 2, 0, 1, 2, 0]


@pytest.mark.parametrize(
    ("config", "inputs", "width", "first"),
    [(CNN, 1, 64 + 56, (30.06 - 1366 * 256 / 12_000) / 2), (MUSICNN, 11, 250, 0.0)],
)
def test_a_30_s_clip_gives_one_row_per_model_input(
    config: TaggerConfig, inputs: int, width: int, first: float, rng: np.random.Generator
) -> None:
    out, starts = _random_tagger(config).embed(_music(30.06, rng), STUDIO_RATE)
    assert out.features.shape == (inputs, width)
    assert starts[0] == pytest.approx(first, abs=0.02) and np.all(np.diff(starts) > 0)
    assert torch.isfinite(out.features).all()


@pytest.mark.parametrize("config", [CNN, MUSICNN])
def test_patch_rows_follow_the_encoders_patches(
    config: TaggerConfig, rng: np.random.Generator
) -> None:
    audio = _music(20.0, rng)
    patches, _ = cut_patches(encoder_log_mel(audio)[None], patch_frames=187, hop_frames=187)
    rows = on_patches(_random_tagger(config), audio)
    assert rows.shape[0] == len(patches) and rows.dtype == np.float32


def test_musicnn_rows_are_its_own_patches(rng: np.random.Generator) -> None:
    tagger = _random_tagger(MUSICNN)
    audio = _music(9.5, rng)
    out, _ = tagger.embed(audio, STUDIO_RATE)
    assert np.array_equal(on_patches(tagger, audio), out.features.numpy())


def test_a_saved_checkpoint_loads_to_the_same_outputs(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    model = _random_tagger(CNN)
    path = tmp_path / "tagger.pt"
    torch.save(
        {"state_dict": model.state_dict(), "config": CNN.to_dict(), "labels": list(model.labels),
         "version": CHECKPOINT_VERSION, "metrics": {}},
        path,
    )  # fmt: skip
    loaded = Tagger.from_checkpoint(path)
    audio = _music(30.0, rng)
    assert loaded.labels == model.labels
    assert torch.equal(loaded.embed(audio, STUDIO_RATE)[0].logits,
                       model.embed(audio, STUDIO_RATE)[0].logits)  # fmt: skip


def test_a_missing_or_foreign_checkpoint_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="convert_taggers"):
        Tagger.from_checkpoint(tmp_path / "missing.pt")
    torch.save({"version": CHECKPOINT_VERSION + 1}, tmp_path / "other.pt")
    with pytest.raises(ModelUnavailable, match="could not be read"):
        Tagger.from_checkpoint(tmp_path / "other.pt")
