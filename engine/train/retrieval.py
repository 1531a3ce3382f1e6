"""Train the search head (engine.models.retrieval) on the frozen studio encoder.

Each training item is a <= 16 s excerpt of a mer4q train clip or of a rendered train piece, seen
clean and altered (+-1 semitone, +-5% tempo, noise at 20 dB SNR, or -- rendered pieces -- the
same notes in another soundfont). The frozen encoder's patch embeddings of every view are cached
(~/.cache/music-studio/retrieval/views), so a rerun only trains the head (about a minute).

Objective, on 10 s segments cut at random, misaligned offsets from two views of one item:
    contrastive (NT-Xent): the two views of an excerpt closest, on the float embedding and on
        the relaxed hash code;
    supervised contrastive over genres: segments of same-genre tracks nearer than others;
    quantisation: relaxed codes near +-1; bit balance: each bit +1 on half of the tracks.
A tenth of the items (by piece) is kept out to report validation figures; mer4q val is never
read.

    python -m engine.train.retrieval --out checkpoints/retrieval.pt
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from engine.audio import SAMPLE_RATE
from engine.genre import PATCH_SECONDS, GenreClassifier, load_classifier
from engine.models.retrieval import RetrievalConfig, RetrievalHead
from engine.retrieval import (
    SEGMENT_HOP_SECONDS,
    SEGMENT_SECONDS,
    Retriever,
    embed,
    patch_embeddings,
    pool_segments,
    segment_starts,
)
from engine.train.augment import ALTERATIONS, alter, tempo_factor
from engine.train.dataset import (
    DEFAULT_DATA_DIR,
    BuildConfig,
    Example,
    default_cache_dir,
    load_audio,
    load_manifest,
    render_again,
    segment_plans,
)

CROP_SECONDS = 16.0  # longest excerpt of an item: room for 10 s segments at several offsets
GRID_SECONDS = 0.25  # segment offsets are drawn on this grid of precomputed windows
JITTER_SECONDS = SEGMENT_HOP_SECONDS / 2  # a query starts up to this far from an indexed segment
FONTS = ("FluidR3_GM.sf2", "MuseScore_General.sf3", "TimGM6mb.sf2")  # of the dataset build
LOSS_NAMES = ("loss", "instance", "genre", "quantisation", "balance")  # logged every 100 steps


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run."""

    real_items: int  # mer4q train clips used (each: one excerpt, clean + one alteration)
    rendered_items: int  # rendered train pieces used (one segment each)
    steps: int  # optimiser steps
    batch_size: int  # items per step (two views each)
    learning_rate: float  # AdamW peak learning rate (one-cycle schedule)
    temperature: float  # NT-Xent / SupCon temperature on the float embedding
    hash_temperature: float  # NT-Xent temperature on the relaxed codes
    genre_temperature: float  # SupCon temperature of the genre term (softer: clusters, not points)
    genre_weight: float  # weight of the supervised genre term
    quantisation_weight: float  # weight of the quantisation loss
    balance_weight: float  # weight of the bit-balance loss
    validation_share: float  # share of items kept out for validation figures
    seed: int  # seeds python, numpy and torch, the item choice and the alterations


@dataclass(frozen=True)
class ItemPlan:
    """One training item: an excerpt of an example and the alteration of its second view."""

    example: Example
    crop_start: float  # seconds into the example
    alteration: str  # one of ALTERATIONS
    seed: int  # draws the noise and the other soundfont

    def digest(self) -> str:
        """Changes when the plan would give other views (or its example was rendered otherwise)."""
        text = json.dumps([self.example.cache_name, self.crop_start, self.alteration, self.seed])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Item:
    """An item's cached views: per view, the patch starts and encoder embeddings."""

    plan: ItemPlan
    views: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (starts (N,), embeddings (N, 256))


def plan_items(examples: list[Example], config: TrainConfig) -> list[ItemPlan]:
    """Seeded choice of items: mer4q train clips, and one segment per rendered train piece,
    spread evenly over the rendered sources. Each item's second view has one alteration drawn
    at random; half of the rendered items are heard in another soundfont."""
    rng = np.random.default_rng(config.seed)
    real = [e for e in examples if e.source == "mer4q" and e.split == "train"]
    chosen = [real[i] for i in sorted(rng.permutation(len(real))[: config.real_items])]
    by_source: dict[str, list[Example]] = {}
    seen: set[tuple[str, str]] = set()
    for e in examples:
        if e.domain == "rendered" and e.split == "train" and (e.source, e.piece_id) not in seen:
            seen.add((e.source, e.piece_id))
            by_source.setdefault(e.source, []).append(e)
    pools = {s: [pool[i] for i in rng.permutation(len(pool))] for s, pool in by_source.items()}
    rendered: list[Example] = []
    while len(rendered) < config.rendered_items and any(pools.values()):
        for source in sorted(pools):
            if pools[source] and len(rendered) < config.rendered_items:
                rendered.append(pools[source].pop())
    return [_item_plan(example, config.seed) for example in chosen + rendered]


def _item_plan(example: Example, seed: int) -> ItemPlan:
    """An item's excerpt and alteration, drawn from the seed and its example alone (so
    changing the item counts leaves the other items, and their cached views, as they were)."""
    key = int.from_bytes(hashlib.sha256(example.example_id.encode()).digest()[:8], "little")
    rng = np.random.default_rng([seed, key])
    audio_only = ALTERATIONS[:-1]
    if example.domain == "rendered" and rng.random() < 0.5:
        alteration = "soundfont"
    else:
        alteration = audio_only[int(rng.integers(len(audio_only)))]
    room = max(0.0, example.duration - CROP_SECONDS)
    crop_start = round(float(rng.uniform(0, room)), 2)
    return ItemPlan(example, crop_start, alteration, int(rng.integers(2**31)))


def encoder_digest(encoder_path: Path) -> str:
    """Names the caches of encoder embeddings: a digest of the weights that make the embedding
    (trunk and projection) and the input shape, so heads added to the encoder keep the caches."""
    stored = torch.load(encoder_path, map_location="cpu", weights_only=True)
    shape = {k: stored["config"][k] for k in ("trunk", "input_channels", "n_mels", "patch_frames")}
    digest = hashlib.sha256(json.dumps(shape, sort_keys=True).encode())
    for key, tensor in sorted(stored["state_dict"].items()):
        if key.startswith(("trunk.", "project.")):
            digest.update(key.encode())
            digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()[:12]


def extract_views(
    plans: list[ItemPlan],
    classifier: GenreClassifier,
    folder: Path,
    *,
    data_dir: Path,
    cache_dir: Path,
) -> list[Item]:
    """Compute (or read from the cache) each item's clean and altered patch embeddings."""
    folder.mkdir(parents=True, exist_ok=True)
    plans_by_example = None
    items = []
    for plan in tqdm(plans, desc="views", unit="item", smoothing=0.05):
        path = folder / f"{plan.example.example_id}.npz"
        if path.is_file():
            with np.load(path) as stored:
                if str(stored["digest"]) == plan.digest():
                    items.append(Item(plan, _views(stored)))
                    continue
        audio = load_audio(plan.example)
        lo = int(round(plan.crop_start * SAMPLE_RATE))
        hi = lo + int(round(CROP_SECONDS * SAMPLE_RATE))
        rng = np.random.default_rng(plan.seed)
        if plan.alteration == "soundfont":
            if plans_by_example is None:
                plans_by_example = segment_plans(BuildConfig(data_dir=data_dir))
            others = [f for f in FONTS if f != plan.example.soundfont]
            altered = render_again(
                plan.example,
                plans_by_example,
                soundfont=others[int(rng.integers(len(others)))],
                data_dir=data_dir,
                cache_dir=cache_dir,
            )[lo:hi]
        else:
            altered = alter(audio[lo:hi], plan.alteration, rng=rng)
        views = {
            "clean": patch_embeddings(audio[lo:hi], classifier),
            plan.alteration: patch_embeddings(altered, classifier),
        }
        arrays = {f"starts_{k}": v[0] for k, v in views.items()}
        arrays |= {f"embeddings_{k}": v[1].astype(np.float16) for k, v in views.items()}
        temporary = path.with_suffix(".tmp.npz")
        np.savez(temporary, digest=plan.digest(), **arrays)
        temporary.replace(path)
        items.append(Item(plan, {k: (s, e.astype(np.float32)) for k, (s, e) in views.items()}))
    return items


def _views(stored: np.lib.npyio.NpzFile) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    names = [key.removeprefix("starts_") for key in stored.files if key.startswith("starts_")]
    return {n: (stored[f"starts_{n}"], stored[f"embeddings_{n}"].astype(np.float32)) for n in names}


def window_grid(starts: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """Segment features of a view at every GRID_SECONDS offset: (offsets, dim)."""
    duration = float(starts[-1]) + PATCH_SECONDS
    offsets = np.arange(0.0, max(0.0, duration - SEGMENT_SECONDS) + 1e-6, GRID_SECONDS)
    return pool_segments(embeddings, starts, offsets, patch_seconds=PATCH_SECONDS)


def genre_matrix(items: list[Item]) -> np.ndarray:
    """(items, items) bool: both items have a genre and share one."""
    targets = np.stack([item.plan.example.target() for item in items]) > 0
    return (targets.astype(np.int32) @ targets.T.astype(np.int32)) > 0


def nt_xent(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """Contrastive loss over (2B, d) unit vectors, rows i and i + B the two views of item i."""
    n = z.shape[0] // 2
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return nn.functional.cross_entropy(logits, target)


def supervised_contrastive(z: torch.Tensor, same: torch.Tensor, temperature: float) -> torch.Tensor:
    """SupCon (Khosla et al. 2020): each row's positives are the rows `same` marks."""
    eye = torch.eye(z.shape[0], dtype=torch.bool)
    logits = (z @ z.T / temperature).masked_fill(eye, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = same & ~eye
    has = positives.any(dim=1)
    if not has.any():
        return z.new_zeros(())
    mean = log_prob.masked_fill(~positives, 0.0).sum(dim=1) / positives.sum(dim=1).clamp(min=1)
    return -mean[has].mean()


def train(config: TrainConfig, items: list[Item], fit: list[int]) -> tuple[RetrievalHead, dict]:
    """Train the head on the items listed in `fit`."""
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    grids = [{name: window_grid(*view) for name, view in items[i].views.items()} for i in fit]
    same_genre = torch.from_numpy(genre_matrix([items[i] for i in fit]))
    head = RetrievalHead(RetrievalConfig(input_dim=items[0].views["clean"][1].shape[1]))
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.learning_rate, total_steps=config.steps
    )
    history = []
    progress = tqdm(range(config.steps), desc="train", unit="step", smoothing=0.05)
    totals = np.zeros(5)
    for step in progress:
        batch = rng.choice(len(fit), size=min(config.batch_size, len(fit)), replace=False)
        first, second = [], []
        for j in batch:
            plan, grid = items[fit[j]].plan, grids[j]
            altered = plan.alteration if rng.random() < 0.8 else "clean"
            # Queries start anywhere; indexed segments every SEGMENT_HOP_SECONDS.
            offset = rng.uniform(0, max(0.0, CROP_SECONDS - SEGMENT_SECONDS))
            jitter = rng.uniform(-JITTER_SECONDS, JITTER_SECONDS)
            pair = [
                _window(grid["clean"], offset + jitter),
                _window(grid[altered], offset / tempo_factor(altered)),
            ]
            if rng.random() < 0.5:
                pair.reverse()
            first.append(pair[0])
            second.append(pair[1])
        features = torch.from_numpy(np.stack(first + second))
        head.train()
        z, h = head(features)
        hn = nn.functional.normalize(h, dim=1)
        same = same_genre[batch][:, batch].repeat(2, 2)
        instance = nt_xent(z, config.temperature) + nt_xent(hn, config.hash_temperature)
        genre = supervised_contrastive(z, same, config.genre_temperature)
        genre = genre + supervised_contrastive(hn, same, config.genre_temperature)
        quantisation = ((h.abs() - 1) ** 2).mean()
        balance = (h.mean(dim=0) ** 2).mean()
        loss = (
            instance
            + config.genre_weight * genre
            + config.quantisation_weight * quantisation
            + config.balance_weight * balance
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        totals += [t.item() for t in (loss, instance, genre, quantisation, balance)]
        if (step + 1) % 100 == 0:
            mean = totals / 100
            losses = dict(zip(LOSS_NAMES, mean.round(4).tolist(), strict=True))
            history.append({"step": step + 1, **losses})
            progress.set_postfix(loss=f"{mean[0]:.3f}", instance=f"{mean[1]:.3f}")
            totals[:] = 0
    return head.eval(), {"history": history}


def _window(grid: np.ndarray, offset: float) -> np.ndarray:
    """The precomputed segment feature nearest an offset (seconds), clipped to the view."""
    index = int(round(offset / GRID_SECONDS))
    return grid[min(max(index, 0), len(grid) - 1)]


def validate(head: RetrievalHead, items: list[Item], held: list[int]) -> dict:
    """Figures on the held-out items, for the head (float and codes) and, as a reference, the
    encoder's own embeddings: top-1 of an altered 10 s excerpt (misaligned by half a segment
    hop) among every item's clean segments, and the same-genre precision of the 10 nearest
    items (item = mean of its segments)."""
    retriever = Retriever(head=head, encoder="", metrics={})
    library, owner, queries = [], [], []
    for i, item in enumerate(items):
        starts, embeddings = item.views["clean"]
        offsets = segment_starts(float(starts[-1]) + PATCH_SECONDS)
        library.append(pool_segments(embeddings, starts, offsets, patch_seconds=PATCH_SECONDS))
        owner += [i] * len(offsets)
    for i in held:
        starts, embeddings = items[i].views[items[i].plan.alteration]
        room = float(starts[-1]) + PATCH_SECONDS >= SEGMENT_SECONDS + JITTER_SECONDS
        offset = [JITTER_SECONDS if room else 0.0]
        queries.append(pool_segments(embeddings, starts, offset, patch_seconds=PATCH_SECONDS))
    owner_array = np.array(owner)
    spaces = {}
    for name, features in (("float", np.concatenate(library)), ("query", np.concatenate(queries))):
        z, codes = embed(features, retriever)
        spaces[name] = {
            "head": z,
            "codes": np.unpackbits(codes, axis=1).astype(np.float32) * 2 - 1,
            "encoder": features / np.linalg.norm(features, axis=1, keepdims=True),
        }
    same = genre_matrix(items)
    figures: dict = {"items": len(held)}
    for name in ("head", "codes", "encoder"):
        library_space, query_space = spaces["float"][name], spaces["query"][name]
        top = owner_array[(query_space @ library_space.T).argmax(axis=1)]
        per_item = np.stack(
            [library_space[owner_array == i].mean(axis=0) for i in range(len(items))]
        )
        precision = []
        for i in held:
            if same[i].any():
                sims = per_item @ per_item[i]
                sims[i] = -np.inf
                precision.append(float(same[i, np.argsort(-sims)[:10]].mean()))
        figures[name] = {
            "altered_top1": round(float(np.mean(top == np.array(held))), 4),
            "genre_precision_at_10": round(float(np.mean(precision)), 4),
        }
    return figures


def split_items(items: list[Item], share: float, seed: int) -> tuple[list[int], list[int]]:
    """(fit, held) item indices; the held share is drawn by piece."""
    held = [
        i
        for i, item in enumerate(items)
        if int(hashlib.sha256(f"{seed}:{item.plan.example.piece_id}".encode()).hexdigest(), 16)
        % 1000
        < share * 1000
    ]
    return [i for i in range(len(items)) if i not in set(held)], held


def main() -> None:
    """Extract (or reuse) the views, train, validate, save the head and its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--cache", type=Path, default=default_cache_dir())
    parser.add_argument("--encoder", type=Path, default=Path("checkpoints/genre.pt"))
    parser.add_argument("--real-items", type=int, default=320)
    parser.add_argument("--rendered-items", type=int, default=320)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--temperature", type=float, default=0.1)
    parser.add_argument("--hash-temperature", type=float, default=0.2)
    parser.add_argument("--genre-temperature", type=float, default=0.1)
    parser.add_argument("--genre-weight", type=float, default=0.3)
    parser.add_argument("--quantisation-weight", type=float, default=1.0)
    parser.add_argument("--balance-weight", type=float, default=0.1)
    parser.add_argument("--validation-share", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (on a shared CPU 1 is fastest)"
    )
    parser.add_argument("--out", type=Path, default=Path("checkpoints/retrieval.pt"))
    parser.add_argument("--figures", type=Path, default=Path("bench/results/retrieval_train.json"))
    args = parser.parse_args()
    config = TrainConfig(
        real_items=args.real_items,
        rendered_items=args.rendered_items,
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        temperature=args.temperature,
        hash_temperature=args.hash_temperature,
        genre_temperature=args.genre_temperature,
        genre_weight=args.genre_weight,
        quantisation_weight=args.quantisation_weight,
        balance_weight=args.balance_weight,
        validation_share=args.validation_share,
        seed=args.seed,
    )
    started = time.perf_counter()
    # On 2 busy cores the encoder ran twice as fast on one thread as on two (0.9 s vs 1.8 s per
    # 16 s view): extra threads spin against the other jobs.
    torch.set_num_threads(args.threads)
    torch.manual_seed(config.seed)
    plans = plan_items(load_manifest(args.cache), config)
    classifier = load_classifier(args.encoder)
    items = extract_views(
        plans,
        classifier,
        args.cache / "retrieval" / "views" / encoder_digest(args.encoder),
        data_dir=args.data,
        cache_dir=args.cache,
    )
    fit, held = split_items(items, config.validation_share, config.seed)
    head, log = train(config, items, fit)
    figures = {
        "train_config": asdict(config),
        "items": {"fit": len(fit), "validation": len(held)},
        "validation": validate(head, items, held),
        "seconds": round(time.perf_counter() - started, 1),
        **log,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    head.save(
        args.out,
        encoder=args.encoder.name,
        metrics={k: figures[k] for k in figures if k != "history"},
    )
    args.figures.parent.mkdir(parents=True, exist_ok=True)
    args.figures.write_text(json.dumps(figures, indent=2))
    print(json.dumps({k: v for k, v in figures.items() if k != "history"}, indent=2))


if __name__ == "__main__":
    main()
