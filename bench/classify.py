"""Benchmark genre classification of 30 s MP3 clips on this machine; prints JSON.

Per clip, after warm-up, the median wall time of each stage: decode (engine.audio.load),
features (the encoder's log-mel), model (encoder forward; bfloat16 where the CPU has it, and
float32 beside it) and total; the same
features computed with librosa side by side with torchaudio, and with the classic baseline's
MFCC statistics; then the throughput of classifying 32 clips one after another.

    python -m bench.classify --out bench/results/classify.json
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from engine.audio import SAMPLE_RATE, load
from engine.features import encoder_log_mel, mfcc_statistics
from engine.genre import classify, encoder_patches, load_classifier, patch_probabilities

CLIP_SECONDS = 30.0  # length of each benchmark clip
CLIPS = 32  # clips in the throughput run


def synthetic_mp3(seed: int) -> bytes:
    """30 s of chords, a bass line and noise hits, encoded as MP3 (a stand-in for a song)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(CLIP_SECONDS * SAMPLE_RATE)) / SAMPLE_RATE
    audio = np.zeros_like(t)
    for bar in range(int(CLIP_SECONDS / 2)):
        root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
        span = (t >= bar * 2) & (t < bar * 2 + 2)
        for ratio in (1.0, 1.26, 1.5, 2.0):
            audio[span] += 0.1 * np.sin(2 * np.pi * root * ratio * t[span])
    hits = rng.random(len(t)) < 4 / SAMPLE_RATE
    audio += (
        np.convolve(hits * rng.normal(size=len(t)), np.exp(-np.arange(2000) / 300), "same") * 0.3
    )
    buffer = io.BytesIO()
    sf.write(
        buffer, (audio / np.abs(audio).max() * 0.8).astype(np.float32), SAMPLE_RATE, format="MP3"
    )
    return buffer.getvalue()


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    """Median wall time of `repeats` calls after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Measure and print the figures (and write them to --out)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("bench/results/classify.json"))
    args = parser.parse_args()

    classifier = load_classifier()
    float32 = replace(classifier, bfloat16=False)
    data = synthetic_mp3(0)
    clip = load(data)
    patches, _ = encoder_patches(clip.samples, classifier.encoder.config)
    stages = {
        "decode_s": median_seconds(lambda: load(data), args.repeats),
        "features_torchaudio_s": median_seconds(
            lambda: encoder_log_mel(clip.samples), args.repeats
        ),
        "features_librosa_s": median_seconds(
            lambda: encoder_log_mel(clip.samples, backend="librosa"), args.repeats
        ),
        "baseline_mfcc_statistics_s": median_seconds(
            lambda: mfcc_statistics(clip.samples), args.repeats
        ),
        "model_s": median_seconds(lambda: patch_probabilities(patches, classifier), args.repeats),
        "model_float32_s": median_seconds(
            lambda: patch_probabilities(patches, float32), args.repeats
        ),
        "total_s": median_seconds(lambda: classify(load(data), classifier), args.repeats),
    }
    clips = [synthetic_mp3(seed) for seed in range(CLIPS)]
    start = time.perf_counter()
    for clip_bytes in clips:
        classify(load(clip_bytes), classifier)
    elapsed = time.perf_counter() - start
    figures = {
        "clip_seconds": CLIP_SECONDS,
        "torch_threads": torch.get_num_threads(),
        "device": str(classifier.device),
        "per_clip_median": {k: round(v, 4) for k, v in stages.items()},
        "throughput": {
            "clips": CLIPS,
            "seconds": round(elapsed, 2),
            "clips_per_second": round(CLIPS / elapsed, 2),
        },
        "target_total_s": 0.3,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
