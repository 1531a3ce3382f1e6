"""Train the studio's audio encoder with its genre head.

Trains on mer4q train (real) and rendered train pieces, balanced by domain, and reports
figures on mer4q val (real, never trained on) and held-out rendered pieces. Seeded. Reads the
patches and musicnn outputs cached by engine.train.teacher.

Variants (the model card compares them):
    --trunk musicnn                   pretrained musicnn (frozen) + trained head (shipped)
    --trunk cnn                       small CNN from scratch on log-mel
    --trunk cnn --hpss                ... with harmonic/percussive channels
    --trunk cnn --distill 1.0         small CNN also taught by musicnn (faster, weaker)

    python -m engine.train.teacher                  # cache patches + musicnn outputs first
    python -m engine.train.genre --trunk musicnn --out checkpoints/genre.pt
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from engine.features import cut_patches, encoder_hpss_log_mel
from engine.genre import GENRES
from engine.models.encoder import EncoderConfig, StudioEncoder
from engine.train.dataset import Example, default_cache_dir, load_audio, load_manifest
from engine.train.genre_data import genre_selection, genre_targets, summarise
from engine.train.teacher import MUSICNN_CHECKPOINT, TEACHER_HOP_FRAMES, teacher_path

TEACHER_TAGS = 50  # musicnn MSD tags the student learns to predict
TEACHER_EMBEDDING = 200  # musicnn penultimate width the student learns to match


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run."""

    trunk: str  # "musicnn" (frozen, pretrained) or "cnn" (trained here)
    hpss: bool  # feed harmonic/percussive channels too (cnn only)
    distill: float  # weight of the musicnn teacher losses (cnn only; 0 = none)
    epochs: int  # passes over the real training clips
    batch_size: int  # patches per step
    learning_rate: float  # AdamW peak learning rate (one-cycle schedule)
    rendered_per_real: float  # rendered clips drawn per real clip in an epoch
    seed: int  # seeds python, numpy and torch


@dataclass
class ExampleTensors:
    """What training reads of one example: its patches and the teacher's outputs."""

    patches: np.ndarray  # (N, channels, 96, 187) float16
    teacher_logits: np.ndarray  # (N, 50)
    teacher_embedding: np.ndarray  # (N, 200)
    trunk_features: np.ndarray  # (N, 1706) musicnn penultimate + pooled (frozen trunk)


def load_tensors(
    example: Example, cache_dir: Path, *, hpss: bool, model: str = "msd"
) -> ExampleTensors:
    """An example's cached outputs of the musicnn `model` (engine.train.teacher.TEACHERS),
    with HPSS patches computed and cached if asked."""
    with np.load(teacher_path(cache_dir, example, model)) as stored:
        patches = stored["patches"]
        logits, penultimate, pooled = stored["logits"], stored["penultimate"], stored["pooled"]
    if hpss:
        path = cache_dir / "features" / "hpss" / f"{example.cache_name}.npy"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            three, _ = cut_patches(
                encoder_hpss_log_mel(load_audio(example)),
                patch_frames=187,
                hop_frames=TEACHER_HOP_FRAMES,
            )
            np.save(path, three.astype(np.float16))
        patches = np.load(path)
    features = np.concatenate([penultimate, pooled.astype(np.float32)], axis=1)
    return ExampleTensors(patches, logits, penultimate, features)


class Student(nn.Module):
    """The encoder plus the heads that imitate the teacher (dropped after training)."""

    def __init__(self, encoder: StudioEncoder) -> None:
        super().__init__()
        self.encoder = encoder
        size = encoder.config.embedding_dim
        self.tags = nn.Linear(size, TEACHER_TAGS)
        self.teacher_embedding = nn.Linear(size, TEACHER_EMBEDDING)


def build_encoder(config: TrainConfig) -> StudioEncoder:
    """A new encoder; a musicnn trunk starts from the converted MSD weights."""
    encoder_config = EncoderConfig(
        trunk=config.trunk,
        input_channels=3 if config.hpss else 1,
        heads=(("genre", len(GENRES)),),
    )
    encoder = StudioEncoder(encoder_config)
    if config.trunk == "musicnn":
        encoder.trunk.load_pretrained(MUSICNN_CHECKPOINT)
    return encoder


def batch_inputs(
    encoder: StudioEncoder, data: list[ExampleTensors], picks: list[tuple[int, int]]
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Encoder forward for (example, patch) picks; a frozen musicnn trunk is skipped."""
    if encoder.config.trunk == "musicnn":
        trunk = torch.from_numpy(np.stack([data[i].trunk_features[j] for i, j in picks]))
        embedding = encoder.project(trunk)
        hidden = encoder.dropout(embedding)
        return embedding, {name: head(hidden) for name, head in encoder.heads.items()}
    x = torch.from_numpy(np.stack([data[i].patches[j] for i, j in picks]).astype(np.float32))
    return encoder(x)


def train(
    config: TrainConfig, examples: list[Example], data: list[ExampleTensors]
) -> StudioEncoder:
    """Train on the examples of split "train", balanced between real and rendered."""
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    student = Student(build_encoder(config))
    encoder = student.encoder
    if config.trunk == "musicnn":
        encoder.trunk.requires_grad_(False)
    targets = torch.from_numpy(genre_targets(examples))
    real = [i for i, e in enumerate(examples) if e.split == "train" and e.domain == "real"]
    rendered = [i for i, e in enumerate(examples) if e.split == "train" and e.domain == "rendered"]
    per_epoch = len(real) + int(len(real) * config.rendered_per_real)
    steps = per_epoch // config.batch_size
    parameters = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.learning_rate, total_steps=config.epochs * steps
    )
    bce = nn.BCEWithLogitsLoss()
    for epoch in range(config.epochs):
        student.train()
        drawn = rng.choice(rendered, size=per_epoch - len(real), replace=False).tolist()
        order = rng.permutation(real + drawn)
        totals = np.zeros(3)
        progress = tqdm(range(steps), desc=f"epoch {epoch + 1}/{config.epochs}", leave=False)
        for step in progress:
            batch = order[step * config.batch_size : (step + 1) * config.batch_size]
            picks = [(int(i), int(rng.integers(len(data[i].patches)))) for i in batch]
            embedding, logits = batch_inputs(encoder, data, picks)
            genre_loss = bce(logits["genre"], targets[batch])
            loss = genre_loss
            tag_loss = embedding_loss = torch.zeros(())
            if config.distill > 0:
                teacher = torch.from_numpy(np.stack([data[i].teacher_logits[j] for i, j in picks]))
                goal = torch.from_numpy(np.stack([data[i].teacher_embedding[j] for i, j in picks]))
                tag_loss = bce(student.tags(embedding), torch.sigmoid(teacher))
                embedding_loss = nn.functional.mse_loss(student.teacher_embedding(embedding), goal)
                loss = loss + config.distill * (tag_loss + 0.1 * embedding_loss)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            totals += [float(genre_loss), float(tag_loss), float(embedding_loss)]
            progress.set_postfix(genre=f"{totals[0] / (step + 1):.3f}")
        mean = totals / max(steps, 1)
        distilled = f" tags {mean[1]:.4f} embedding {mean[2]:.4f}" if config.distill else ""
        print(f"epoch {epoch + 1}: genre {mean[0]:.4f}{distilled}", flush=True)
    return encoder.eval()


def predict(encoder: StudioEncoder, data: list[ExampleTensors]) -> np.ndarray:
    """Clip-level genre probabilities: the mean over each clip's patches."""
    encoder.eval()
    result = []
    with torch.inference_mode():
        for index, tensors in enumerate(data):
            picks = [(index, j) for j in range(len(tensors.patches))]
            _, logits = batch_inputs(encoder, data, picks)
            result.append(torch.sigmoid(logits["genre"]).mean(dim=0).numpy())
    return np.stack(result)


def main() -> None:
    """Train, evaluate on val and held-out renders, save checkpoint + figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=default_cache_dir())
    parser.add_argument("--trunk", choices=("musicnn", "cnn"), default="musicnn")
    parser.add_argument("--hpss", action="store_true", help="add harmonic/percussive channels")
    parser.add_argument("--distill", type=float, default=0.0, help="weight of teacher losses")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--rendered-per-real", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("checkpoints/genre.pt"))
    parser.add_argument("--figures", type=Path, default=Path("bench/results/genre_train.json"))
    args = parser.parse_args()
    config = TrainConfig(
        trunk=args.trunk,
        hpss=args.hpss,
        distill=args.distill,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        rendered_per_real=args.rendered_per_real,
        seed=args.seed,
    )
    if config.trunk == "musicnn" and (config.hpss or config.distill):
        parser.error("--hpss and --distill apply to --trunk cnn")
    examples = genre_selection(load_manifest(args.cache))
    data = [load_tensors(e, args.cache, hpss=config.hpss) for e in tqdm(examples, desc="load")]
    encoder = train(config, examples, data)
    scored = [i for i, e in enumerate(examples) if e.split != "train"]
    subset = [examples[i] for i in scored]
    probabilities = predict(encoder, [data[i] for i in scored])
    figures = {
        "train_config": asdict(config),
        **summarise(subset, probabilities, genre_targets(subset)),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    encoder.save(args.out, labels={"genre": list(GENRES)}, metrics=figures)
    args.figures.parent.mkdir(parents=True, exist_ok=True)
    args.figures.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
