"""Tests of engine.models.musicnn: shapes, preprocessing, and the converted checkpoint.

Audio is synthesised here; nothing needs TensorFlow or ../shared. The checkpoint tests run
only when checkpoints/musicnn_msd.pt exists (see engine.train.convert_musicnn).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.models.encoder import EncoderConfig, StudioEncoder, build_trunk
from engine.models.musicnn import (
    Musicnn,
    MusicnnBackend,
    MusicnnConfig,
    log_mel,
    log_mel_patches,
    resample_to_model_rate,
)

CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "musicnn_msd.pt"
needs_checkpoint = pytest.mark.skipif(
    not CHECKPOINT.is_file(), reason="checkpoints/musicnn_msd.pt has not been converted"
)
STUDIO_RATE = 22_050


def _tone(seconds: float, rate: int = 16_000, frequency: float = 440.0, amp: float = 0.3):
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def _chord(seconds: float, rate: int) -> np.ndarray:
    """C major with a bass C, 5 harmonics each, re-struck every 2 s (as in the TF check)."""
    t = np.arange(int(rate * seconds)) / rate
    y = np.zeros_like(t)
    for f in (261.63, 329.63, 392.0, 130.81):
        for h in range(1, 6):
            y += 0.08 / h * np.sin(2 * np.pi * f * h * t) * np.exp(-0.3 * (t % 2.0))
    return y.astype(np.float32)


def test_config_round_trips_through_a_plain_dict() -> None:
    config = MusicnnConfig()
    assert MusicnnConfig.from_dict(config.to_dict()) == config
    assert config.frontend_channels == 561 and config.midend_channels == 753
    with pytest.raises(ValueError):
        MusicnnConfig.from_dict({**config.to_dict(), "bogus": 1})


@pytest.mark.parametrize(
    ("seconds", "hop_frames", "patches"),
    [(30.0, None, 10), (6.0, None, 2), (3.0, None, 1), (1.0, None, 1), (30.0, 93, 19)],
)
def test_log_mel_patch_count(seconds: float, hop_frames: int | None, patches: int) -> None:
    audio = _tone(seconds)
    frames = log_mel(audio)
    assert frames.shape == (1 + len(audio) // 256, 96)  # librosa's centred frame count
    batch = log_mel_patches(audio, hop_frames=hop_frames)
    assert batch.shape == (patches, 187, 96)
    assert torch.isfinite(batch).all() and (batch >= 0).all()


def test_log_mel_matches_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    audio = _tone(2.0, amp=0.5) + 0.05 * rng.standard_normal(32_000).astype(np.float32)
    mel = librosa.feature.melspectrogram(
        y=audio, sr=16_000, hop_length=256, n_fft=512, n_mels=96, pad_mode="reflect"
    ).T
    # musicnn: float16 mel, log taken in float32 (numpy 1.x promotion of 10000 * float16)
    musicnn_ref = np.log10(10_000 * mel.astype(np.float16).astype(np.float32) + 1)
    assert np.abs(log_mel(audio).numpy() - musicnn_ref).max() < 1e-3
    plain = log_mel(audio, float16=False).numpy()
    assert np.abs(plain - np.log10(10_000 * mel + 1)).max() < 1e-3


def test_random_model_outputs_have_musicnn_shapes() -> None:
    torch.manual_seed(0)
    model = Musicnn(MusicnnConfig()).eval()
    patches = log_mel_patches(_tone(7.0))
    with torch.inference_mode():
        out = model.features(patches)
        logits = model(patches)
    assert out.logits.shape == out.probabilities.shape == (2, 50)
    assert out.penultimate.shape == (2, 200)
    assert out.mean_pool.shape == out.max_pool.shape == (2, 753)
    assert torch.equal(logits, out.logits)
    assert ((out.probabilities >= 0) & (out.probabilities <= 1)).all()
    assert all(torch.isfinite(t).all() for t in (out.logits, out.penultimate, out.max_pool))


def test_a_backend_copy_reads_the_front_end_as_the_model_does() -> None:
    torch.manual_seed(0)
    model = Musicnn().eval()
    copy = MusicnnBackend()
    copy.load_state_dict(model.state_dict(), strict=False)
    patches = log_mel_patches(_tone(4.0))
    with torch.inference_mode():
        out = model.features(patches)
        features = copy.eval().trunk_features(model.frontend(patches))
    assert features.shape == (1, copy.trunk_dim) == (1, 1706)
    torch.testing.assert_close(
        features, torch.cat([out.penultimate, out.mean_pool, out.max_pool], dim=1)
    )


def test_encoder_trunk_heads_read_their_own_mid_end_in_the_same_pass() -> None:
    torch.manual_seed(0)
    config = EncoderConfig(trunk_heads=(("mood", 12),), head_midend=True)
    encoder = StudioEncoder(config).eval()
    plain = StudioEncoder(replace(config, head_midend=False)).eval()
    plain.load_state_dict(encoder.state_dict(), strict=False)
    patches = torch.randn(2, 1, 96, 187)
    with torch.inference_mode():
        front = encoder.trunk.musicnn.frontend(patches[:, 0].transpose(1, 2))
        embedding, logits = encoder(patches)
        plain_embedding, plain_logits = plain(patches)
        own = encoder.trunk_heads["mood"](encoder.trunk.head_midend.trunk_features(front))
    torch.testing.assert_close(logits["mood"], own)
    torch.testing.assert_close(embedding, plain_embedding)  # the genre side is untouched
    torch.testing.assert_close(logits["genre"], plain_logits["genre"])
    assert not torch.allclose(logits["mood"], plain_logits["mood"])  # another mid-end
    with pytest.raises(ValueError, match="no mid-end"):
        build_trunk(EncoderConfig(trunk="cnn", head_midend=True))


def test_embed_takes_studio_rate_audio() -> None:
    audio = _tone(7.0, rate=STUDIO_RATE)
    resampled = resample_to_model_rate(audio, STUDIO_RATE)
    assert abs(len(resampled) - len(audio) * 16_000 / STUDIO_RATE) <= 1
    torch.manual_seed(0)
    out = Musicnn().eval().embed(audio, sample_rate=STUDIO_RATE)
    assert out.probabilities.shape == (2, 50) and out.penultimate.shape == (2, 200)
    with pytest.raises(ValueError):
        Musicnn().embed(np.zeros((2, 100), np.float32), sample_rate=STUDIO_RATE)


def test_fast_eval_frontend_equals_the_layer_by_layer_definition() -> None:
    torch.manual_seed(0)
    model = Musicnn().eval()
    for block in (*model.timbral, *model.temporal):
        n = block.bn.num_features
        block.bn.weight.data = torch.randn(n)  # about half the BN scales negative
        block.bn.bias.data = torch.randn(n)
        block.bn.running_mean = torch.randn(n)
        block.bn.running_var = torch.rand(n) + 0.1
    x = torch.randn(2, 1, 187, 96)
    with torch.inference_mode():
        for block in (*model.timbral, *model.temporal):
            z = F.relu(block.conv(F.pad(x, (0, 0, *block.pad))))
            expected = block.bn(z).amax(dim=3)
            assert torch.allclose(block(x), expected, atol=1e-5)


@needs_checkpoint
def test_checkpoint_is_slim_and_complete() -> None:
    assert CHECKPOINT.stat().st_size < 50 * 2**20
    raw = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    assert set(raw) == {"state_dict", "config", "labels", "version", "metrics"}
    model = Musicnn.from_checkpoint(CHECKPOINT)
    assert not model.training
    assert len(model.labels) == 50 and model.labels[:3] == ("rock", "pop", "alternative")
    assert model.config == MusicnnConfig()


@needs_checkpoint
def test_checkpoint_reproduces_original_tensorflow_tags() -> None:
    # Mean tag probabilities of the original TF musicnn 0.1.0 on this chord (resampled from
    # 22,050 Hz with resampy kaiser_best), recorded when the checkpoint was converted.
    tf_reference = {
        "indie": 0.3809,
        "ambient": 0.1633,
        "alternative": 0.1194,
        "instrumental": 0.1054,
        "indie rock": 0.1037,
    }
    model = Musicnn.from_checkpoint(CHECKPOINT)
    probabilities = model.embed(_chord(10.0, STUDIO_RATE), STUDIO_RATE).probabilities.mean(0)
    ours = dict(zip(model.labels, probabilities.tolist(), strict=True))
    top5 = sorted(ours, key=ours.__getitem__, reverse=True)[:5]
    assert top5 == list(tf_reference)
    for tag, p in tf_reference.items():
        assert ours[tag] == pytest.approx(p, abs=1e-3)


@needs_checkpoint
def test_checkpoint_tells_a_sine_from_noise() -> None:
    model = Musicnn.from_checkpoint(CHECKPOINT)
    rng = np.random.default_rng(1234)
    n = 6 * STUDIO_RATE
    sines = [_tone(6.0, STUDIO_RATE, amp=a) for a in (0.1, 0.5)]
    noises = [(a * rng.standard_normal(n)).astype(np.float32) for a in (0.1, 0.3)]
    outs = [model.embed(y, STUDIO_RATE) for y in (*sines, *noises)]
    top = [model.labels[int(o.probabilities.mean(0).argmax())] for o in outs]
    assert top[0] == top[1]  # loudness does not change what a pure tone is
    assert top[0] not in top[2:]
    emb = [o.penultimate.mean(0) for o in outs]

    def cos(a: torch.Tensor, b: torch.Tensor) -> float:
        return F.cosine_similarity(a, b, dim=0).item()

    assert min(cos(emb[0], emb[1]), cos(emb[2], emb[3])) > cos(emb[0], emb[2]) + 0.3
