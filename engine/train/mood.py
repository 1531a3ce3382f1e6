"""Train the studio encoder's mood heads on mer4q train and write them into its checkpoint.

Two linear heads read musicnn features of each patch (1706: penultimate + pooled): "mood" (12
sigmoid tag outputs) and "quadrant" (Russell quadrant, 4-way softmax; valence and arousal
follow from its probabilities). The shipped heads (--source tuned) read their own copy of the
MSD musicnn's mid-end and dense layer, fine-tuned on the training clips' tags and quadrants
over the shared, frozen front end (the copy adds ~2% to a patch's forward pass); --source
trunk reads the frozen trunk's features, the ones the shared embedding is projected from.
Each head is an L2-regularised logistic regression on standardised features (the
standardisation is folded into the weights), fitted on every patch of every training clip
with the clip's labels: a convex fit (L-BFGS); the fine-tuning is seeded, so a run repeats.
With --stack-c (shipped: 0.1), each tag's logit is then re-read from all 12 tag logits and the
4 quadrant logits (a second logistic regression per tag, fitted on out-of-fold first-stage clip
logits, grouped by artist): tags borrow from related tags and from the well-learnt quadrant.
Both stages are linear, so they fold into one linear mood head. The trunk, projection and genre
head are copied bit for bit, so one forward pass gives embedding + genre + mood. Reads the
musicnn outputs cached by engine.train.teacher.

Variants (--variants measures them all: grouped 5-fold cross-validation on mer4q train, by
artist, chooses; mer4q val is reported, never trained on; in "tuned" each fold tunes its own
mid-end on its training clips):
    --source tuned --quadrant four-way --c 0.001 --stack-c 0.1
                                                   heads on a tuned mid-end + second stage (shipped)
    --stack-c 0                                    no second stage
    --source trunk                                 heads on the frozen trunk's features
    --source embedding                             heads on the shared 256-d embedding
    --quadrant signs                               valence + arousal heads; quadrant from signs
    --c 0.0003 / 0.003                             weaker / stronger L2 regularisation
    "MTT trunk, ...", "MSD + MTT trunks, ...", ...  heads reading musicnn's MagnaTagATune
        model too (SOURCES; cache it first: python -m engine.train.teacher --model mtt)
    "jamendo-fcn, ...", "tuned mid-end + jamendo-fcn, ...", ...  heads reading an MTG-Jamendo
        tagger alone or beside the tuned features (TAGGERS; convert and cache them first:
        python -m engine.train.convert_taggers; python -m engine.train.tagger_cache)
Name variants after --variants to measure only those; --cv-only leaves val out, so that val is
measured once, for the variant cross-validation chose (docs/experiments/mood.md):
    python -m engine.train.mood --cv-only --variants "trunk, four-way quadrant" \
        "tuned mid-end, four-way quadrant" --figures /tmp/variants.json
On the frozen trunk the second stage traded MAP for AUC (docs/experiments/mood.md):
    python -m engine.train.mood --source trunk --stack-c 0.1 --out /tmp/genre_stacked.pt \
        --figures bench/results/mood_stack.json

    python -m engine.train.mood --checkpoint checkpoints/genre.pt
    python -m engine.train.mood --variants --figures bench/results/mood_variants.json
"""

from __future__ import annotations

import argparse
import copy
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from torch import nn
from tqdm import tqdm

from engine.genre import DEFAULT_CHECKPOINT
from engine.models.encoder import MusicnnTrunk, StudioEncoder
from engine.models.musicnn import MusicnnBackend
from engine.mood import MOOD_TAGS, QUADRANT_SIGNS, QUADRANTS, quadrant_of, valence_arousal
from engine.train.dataset import DEFAULT_DATA_DIR, default_cache_dir, load_manifest
from engine.train.genre import load_tensors
from engine.train.mood_data import (
    MoodClip,
    mer4q_examples,
    quadrant_indices,
    read_clips,
    read_tag_sets,
    summarise,
    tag_targets,
)
from engine.train.tagger_cache import tagger_path

MOOD_HEADS = ("mood", "quadrant")  # the heads this script fits and writes
FOLDS = 5  # grouped cross-validation folds on mer4q train
# What the heads can read: "trunk" the MSD musicnn features (1706), "embedding" the shared
# 256-d embedding, "mtt" the MagnaTagATune musicnn features (1706), "trunks" both (3412),
# "trunks+tags" both and both models' 50 tag logits (3512), "trunk+tags" the MSD features and
# both models' tag logits (1806), "tuned" (1706) the heads' own copy of the MSD musicnn's mid-end
# and dense layer, fine-tuned on the fitted clips' tags and quadrants (over the same front end).
# A converted MTG-Jamendo tagger (engine.train.tagger_cache) alone ("jamendo-fcn") or appended
# to the tuned or the frozen trunk's features ("tuned+jamendo-fcn", "trunk+jamendo-fcn"): its
# penultimate layer and tag logits per patch.
TAGGERS = ("jamendo-moodtheme", "jamendo-fcn", "jamendo-musicnn")
SOURCES = (
    "trunk", "embedding", "mtt", "trunks", "trunks+tags", "trunk+tags", "tuned", *TAGGERS,
    *(f"{base}+{name}" for base in ("tuned", "trunk") for name in TAGGERS),
)  # fmt: skip
SECOND_TRUNK_SOURCES = ("mtt", "trunks", "trunks+tags", "trunk+tags")  # read the MTT cache
TRUNK_HEAD_SOURCES = ("trunk", "tuned")  # what the installed heads can read: trunk heads
# Fine-tuning the heads' mid-end ("tuned"): Adam over every patch of the fitted clips, the
# front end and all batch-norm statistics frozen, through a linear head on standardised
# features (dropout, L2 as the convex fit's C); the convex heads are then fitted on its output.
TUNE_EPOCHS = 4
TUNE_LR = 1e-4  # the mid-end's learning rate
TUNE_HEAD_LR = 1e-3  # the linear head's
TUNE_BATCH = 32  # patches per step
TUNE_DROPOUT = 0.1
TUNE_SEED = 0
STACK_C = 0.1  # the shipped second stage's C


@dataclass(frozen=True)
class MoodTrainConfig:
    """Settings of one fit of the mood heads."""

    source: str  # what the heads read: one of SOURCES
    quadrant: str  # "four-way": softmax over Q1-Q4; "signs": valence + arousal sigmoids
    c: float  # inverse L2 strength of the logistic regressions (scikit-learn's C)
    stack_c: float | None = None  # C of the second stage re-reading the logits (None: none)
    soup: int = 1  # "tuned": mid-ends tuned from seeds TUNE_SEED, +1, ..., weights averaged


@dataclass(frozen=True)
class MoodData:
    """What training reads: each clip's patch features and its targets."""

    clips: list[MoodClip]  # metadata order
    embedding: list[np.ndarray]  # per clip (patches, 256): the frozen encoder's embedding
    trunk: list[np.ndarray]  # per clip (patches, 1706): musicnn penultimate + pooled
    tags: np.ndarray  # (clips, 12) multi-hot
    quadrants: np.ndarray  # (clips,) index into QUADRANTS
    # Per clip (patches, 1706): the MagnaTagATune musicnn's features (empty: not loaded).
    mtt_trunk: list[np.ndarray] = field(default_factory=list)
    # Per clip (patches, 100): the MSD and MTT musicnn tag logits (empty: not loaded).
    tag_logits: list[np.ndarray] = field(default_factory=list)
    # Per clip (patches, 561, frames) float16: the MSD musicnn's front-end maps, and the mid-end
    # that fine-tuning starts from (the encoder's own), for "tuned" (empty / None: not loaded).
    fronts: list[np.ndarray] = field(default_factory=list)
    start: MusicnnBackend | None = None
    # Per clip (patches, 1706): the output of a mid-end tuned by `with_features` (empty: none).
    tuned: list[np.ndarray] = field(default_factory=list)
    # Per tagger of TAGGERS, per clip (patches, penultimate + tags) (a tagger not loaded: absent).
    taggers: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def features(self, source: str) -> list[np.ndarray]:
        """Per-clip patch features the heads read (a key of SOURCES)."""
        parts = {
            "embedding": [self.embedding],
            "trunk": [self.trunk],
            "mtt": [self.mtt_trunk],
            "trunks": [self.trunk, self.mtt_trunk],
            "trunks+tags": [self.trunk, self.mtt_trunk, self.tag_logits],
            "trunk+tags": [self.trunk, self.tag_logits],
            "tuned": [self.tuned],
            **{name: [self.taggers.get(name, [])] for name in TAGGERS},
            **{f"tuned+{name}": [self.tuned, self.taggers.get(name, [])] for name in TAGGERS},
            **{f"trunk+{name}": [self.trunk, self.taggers.get(name, [])] for name in TAGGERS},
        }[source]
        if len(parts) == 1:
            return parts[0]
        return [np.concatenate(clip, axis=1) for clip in zip(*parts, strict=True)]


def load_data(
    data_dir: Path,
    cache_dir: Path,
    checkpoint: Path,
    *,
    mtt: bool,
    fronts: bool = False,
    taggers: tuple[str, ...] = (),
) -> MoodData:
    """Every mer4q clip's cached musicnn features, projected by the checkpoint's encoder.

    With `mtt`, the MagnaTagATune musicnn's features and both models' tag logits too (cached by
    ``python -m engine.train.teacher --model mtt``); with `fronts`, the front-end maps of the
    encoder's musicnn (computed from the cached patches) and its mid-end, for "tuned"; with
    `taggers`, those MTG-Jamendo taggers' rows (cached by engine.train.tagger_cache).
    """
    clips = read_clips(data_dir)
    examples = mer4q_examples(clips, load_manifest(cache_dir))
    encoder, _, _ = StudioEncoder.from_checkpoint(checkpoint)
    if fronts and not isinstance(encoder.trunk, MusicnnTrunk):
        raise ValueError(f"{checkpoint}: the 'tuned' heads need a musicnn trunk")
    trunk, embedding, mtt_trunk, tag_logits, front_maps = [], [], [], [], []
    tagger_rows: dict[str, list[np.ndarray]] = {name: [] for name in taggers}
    for example in tqdm(examples, desc="load"):
        msd = load_tensors(example, cache_dir, hpss=False)
        with torch.inference_mode():
            embedding.append(encoder.project(torch.from_numpy(msd.trunk_features)).numpy())
            if fronts:
                patches = torch.from_numpy(msd.patches[:, 0]).float().transpose(1, 2)
                front_maps.append(encoder.trunk.musicnn.frontend(patches).half().numpy())
        trunk.append(msd.trunk_features)
        if mtt:
            second = load_tensors(example, cache_dir, hpss=False, model="mtt")
            mtt_trunk.append(second.trunk_features)
            tag_logits.append(np.concatenate([msd.teacher_logits, second.teacher_logits], axis=1))
        for name, rows in tagger_rows.items():
            rows.append(np.load(tagger_path(cache_dir, example, name)))
            if len(rows[-1]) != len(msd.trunk_features):
                raise ValueError(f"{example.example_id}: {name} rows do not match its patches")
    start = None
    if fronts:
        start = MusicnnBackend(encoder.trunk.musicnn.config)
        start.load_state_dict(encoder.trunk.musicnn.state_dict(), strict=False)
    tags = tag_targets([c.moods for c in clips], read_tag_sets(data_dir))
    return MoodData(
        clips,
        embedding,
        trunk,
        tags,
        quadrant_indices(clips),
        mtt_trunk,
        tag_logits,
        front_maps,
        start,
        taggers=tagger_rows,
    )


def midend_features(midend: MusicnnBackend, fronts: list[np.ndarray]) -> list[np.ndarray]:
    """Per clip (patches, 1706): `midend`'s features of each clip's front-end maps."""
    midend.eval()
    with torch.inference_mode():
        return [midend.trunk_features(torch.from_numpy(f).float()).numpy() for f in fronts]


def tune_midend(
    config: MoodTrainConfig, data: MoodData, indices: list[int], seed: int = TUNE_SEED
) -> MusicnnBackend:
    """A copy of `data.start` fine-tuned on every patch of the clips at `indices` (`seed` sets
    the batches, dropout and head).

    The loss is the tags' binary cross-entropy and the quadrant's cross-entropy (weighted by
    their outputs, 12 and 4), through a linear head on the features standardised as the convex
    fit does, with the L2 penalty of `config.c`; batch-norm statistics stay as pretrained.
    """
    if data.start is None or not data.fronts:
        raise ValueError("tuning the mid-end needs the front-end maps (load_data(fronts=True))")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    midend = copy.deepcopy(data.start)
    frozen = np.concatenate(midend_features(midend, [data.fronts[i] for i in indices]))
    mean = torch.from_numpy(frozen.mean(axis=0))
    spread = torch.from_numpy(np.where(frozen.std(axis=0) > 1e-6, frozen.std(axis=0), 1.0))
    tags, quadrants = len(MOOD_TAGS), len(QUADRANTS)
    head = nn.Linear(frozen.shape[1], tags + quadrants)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    optimizer = torch.optim.Adam(
        [
            {"params": midend.parameters(), "lr": TUNE_LR},
            {"params": head.parameters(), "lr": TUNE_HEAD_LR},
        ]
    )
    pairs = np.array([(i, j) for i in indices for j in range(len(data.fronts[i]))])
    l2 = 1.0 / (config.c * len(pairs))  # the convex fit's penalty, per patch
    targets = torch.from_numpy(data.tags).float(), torch.from_numpy(data.quadrants).long()
    for _ in tqdm(range(TUNE_EPOCHS), desc="tune mid-end", leave=False):
        midend.train()
        for module in midend.modules():
            if isinstance(module, nn.BatchNorm1d):
                module.eval()  # keep the pretrained statistics
        order = rng.permutation(len(pairs))
        for first in range(0, len(order), TUNE_BATCH):
            batch = pairs[order[first : first + TUNE_BATCH]]
            x = torch.stack([torch.from_numpy(data.fronts[i][j]).float() for i, j in batch])
            z = (midend.trunk_features(x) - mean) / spread
            out = head(F.dropout(z, TUNE_DROPOUT))
            owner = torch.from_numpy(batch[:, 0])
            loss = (
                F.binary_cross_entropy_with_logits(out[:, :tags], targets[0][owner]) * tags
                + F.cross_entropy(out[:, tags:], targets[1][owner]) * quadrants
            ) / (tags + quadrants) + 0.5 * l2 * head.weight.pow(2).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return midend.eval()


def tune_soup(config: MoodTrainConfig, data: MoodData, indices: list[int]) -> MusicnnBackend:
    """`config.soup` mid-ends tuned as `tune_midend` does from consecutive seeds, their weights
    averaged into one (a "model soup": they all start from the same pretrained mid-end)."""
    tuned = [tune_midend(config, data, indices, TUNE_SEED + k) for k in range(config.soup)]
    if len(tuned) == 1:
        return tuned[0]
    states = [m.state_dict() for m in tuned]
    soup = {
        name: torch.stack([s[name] for s in states]).mean(dim=0) if value.is_floating_point()
        else value
        for name, value in states[0].items()
    }  # fmt: skip
    tuned[0].load_state_dict(soup)
    return tuned[0].eval()


# Mid-ends already tuned, by (soup, C, fitted clips), with every clip's features through them.
TunedMemo = dict[tuple[int, float, tuple[int, ...]], tuple[MoodData, MusicnnBackend]]


def with_features(
    config: MoodTrainConfig, data: MoodData, indices: list[int], memo: TunedMemo | None = None
) -> tuple[MoodData, MusicnnBackend | None]:
    """The data the heads of `config` fit on the clips at `indices`: for "tuned", a mid-end
    fine-tuned on those clips and every clip's features through it (with that mid-end).

    `memo` (for one `data`) keeps each tuning, so that variants differing only in their heads
    share one per fold.
    """
    if "tuned" not in config.source.split("+"):
        return data, None
    memo = {} if memo is None else memo
    key = (config.soup, config.c, tuple(indices))
    if key not in memo:
        midend = tune_soup(config, data, indices)
        memo[key] = replace(data, tuned=midend_features(midend, data.fronts)), midend
    return memo[key]


def fit_heads(config: MoodTrainConfig, data: MoodData, indices: list[int]) -> dict[str, nn.Linear]:
    """Fit the heads on the clips at `indices`, with the second stage when configured.

    Returns:
        As `fit_first_stage`; with `config.stack_c`, the mood head's logits are the second
        stage's (folded in: still one Linear over the features).
    """
    heads = fit_first_stage(config, data, indices)
    if config.stack_c is None:
        return heads
    mix, shift = fit_second_stage(config, data, indices)
    first = torch.cat([heads["mood"].weight, heads["quadrant"].weight]).detach().double().numpy()
    first_bias = torch.cat([heads["mood"].bias, heads["quadrant"].bias]).detach().double().numpy()
    with torch.no_grad():
        heads["mood"].weight.copy_(torch.from_numpy(mix @ first))
        heads["mood"].bias.copy_(torch.from_numpy(mix @ first_bias + shift))
    return heads


def fit_second_stage(
    config: MoodTrainConfig, data: MoodData, indices: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Each tag's logit as a logistic regression on every first-stage logit of the clip.

    The first-stage logits are out of fold (grouped by artist), so the second stage learns
    how far to trust them on clips they were not fitted on.

    Returns:
        (mix (12, 12 + quadrant outputs), shift (12,)): tag logit = mix @ logits + shift.
    """
    groups = [data.clips[i].artist for i in indices]
    features = data.features(config.source)
    inputs, targets = [], []
    for fit, held in GroupKFold(n_splits=FOLDS).split(indices, groups=groups):
        inner = fit_first_stage(config, data, [indices[i] for i in fit])
        inputs += [stage_inputs(inner, features[indices[i]]) for i in held]
        targets += [data.tags[indices[i]] for i in held]
    x, y = np.stack(inputs), np.stack(targets)
    models = [
        LogisticRegression(C=config.stack_c, max_iter=5000).fit(x, y[:, t])
        for t in range(len(MOOD_TAGS))
    ]
    return np.concatenate([m.coef_ for m in models]), np.concatenate([m.intercept_ for m in models])


def stage_inputs(heads: dict[str, nn.Linear], patches: np.ndarray) -> np.ndarray:
    """The second stage's input for one clip (its patch features): its mean tag and quadrant
    logits over patches."""
    with torch.inference_mode():
        x = torch.from_numpy(patches).float()
        logits = torch.cat([heads["mood"](x), heads["quadrant"](x)], dim=1)
    return logits.mean(dim=0).double().numpy()


def fit_first_stage(
    config: MoodTrainConfig, data: MoodData, indices: list[int]
) -> dict[str, nn.Linear]:
    """Fit the heads on every patch of the clips at `indices` (clip labels on each patch).

    Returns:
        {"mood": Linear(dim, 12), "quadrant": Linear(dim, 4 or 2)} over raw (unstandardised)
        features: quadrant logits are softmax logits (four-way) or valence and arousal sigmoid
        logits (signs).
    """
    features = data.features(config.source)
    x = np.concatenate([features[i] for i in indices]).astype(np.float64)
    owner = np.concatenate([np.full(len(features[i]), i) for i in indices])
    mean, spread = x.mean(axis=0), x.std(axis=0)
    scale = np.where(spread > 1e-6, spread, 1.0)  # a constant feature keeps its scale
    z = (x - mean) / scale
    signs = np.array([QUADRANT_SIGNS[q] for q in QUADRANTS])[data.quadrants[owner]] > 0
    targets = {
        "mood": [data.tags[owner, t] for t in range(len(MOOD_TAGS))],
        "quadrant": [data.quadrants[owner]]
        if config.quadrant == "four-way"
        else [signs[:, 0], signs[:, 1]],
    }
    heads = {}
    for name, columns in targets.items():
        weights, biases = [], []
        for y in tqdm(columns, desc=f"{name} head", leave=False):
            model = LogisticRegression(C=config.c, max_iter=5000).fit(z, y)
            weights.append(model.coef_)
            biases.append(model.intercept_)
        weight = np.concatenate(weights) / scale  # fold the standardisation in
        head = nn.Linear(x.shape[1], len(weight))
        with torch.no_grad():
            head.weight.copy_(torch.from_numpy(weight))
            head.bias.copy_(torch.from_numpy(np.concatenate(biases) - weight @ mean))
        heads[name] = head.eval()
    return heads


def predict(
    heads: dict[str, nn.Linear], config: MoodTrainConfig, data: MoodData, indices: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Clip-level (tag probabilities (clips, 12), quadrant indices (clips,)).

    A clip's tag and quadrant probabilities are the means over its patches and its quadrant
    is the one of its valence and arousal, as in engine.mood: from the quadrant
    probabilities (four-way), or the sign heads' mean probabilities mapped to [-1, 1].
    """
    features = data.features(config.source)
    tags, quadrants = [], []
    with torch.inference_mode():
        for index in indices:
            x = torch.from_numpy(features[index])
            tags.append(torch.sigmoid(heads["mood"](x)).mean(dim=0).numpy())
            logits = heads["quadrant"](x)
            if config.quadrant == "four-way":
                valence, arousal = valence_arousal(torch.softmax(logits, dim=1).mean(dim=0))
            else:
                valence, arousal = (2 * torch.sigmoid(logits).mean(dim=0) - 1).tolist()
            quadrants.append(QUADRANTS.index(quadrant_of(valence, arousal)))
    return np.stack(tags), np.array(quadrants)


def evaluate(
    config: MoodTrainConfig, data: MoodData, *, val: bool = True, memo: TunedMemo | None = None
) -> tuple[dict, dict[str, nn.Linear] | None, MusicnnBackend | None]:
    """Grouped cross-validation figures on train, and val figures of heads fitted on train.

    Args:
        val: also fit on all of train and measure val (False: cross-validation only, so
            that val is measured once, for the variant cross-validation chose).
        memo: tuned mid-ends to share with other variants on the same `data` (with_features).

    Returns:
        (figures, the heads fitted on all of train or None without `val`, their tuned
        mid-end or None)
    """
    train_set = [i for i, c in enumerate(data.clips) if c.split == "train"]
    val_set = [i for i, c in enumerate(data.clips) if c.split == "val"]
    groups = [data.clips[i].artist for i in train_set]
    folds = []
    for fit, held in GroupKFold(n_splits=FOLDS).split(train_set, groups=groups):
        fit_set, held_set = [train_set[i] for i in fit], [train_set[i] for i in held]
        fold, _ = with_features(config, data, fit_set, memo)
        tags, quadrants = predict(fit_heads(config, fold, fit_set), config, fold, held_set)
        folds.append(summarise(tags, data.tags[held_set], quadrants, data.quadrants[held_set]))
    keys = ("macro_roc_auc", "mean_average_precision", "quadrant_accuracy")
    figures = {
        "train_config": asdict(config),
        "cross_validation": {key: float(np.mean([f[key] for f in folds])) for key in keys},
        "folds": {key: [float(f[key]) for f in folds] for key in keys},
    }
    if not val:
        return figures, None, None
    data, midend = with_features(config, data, train_set, memo)
    heads = fit_heads(config, data, train_set)
    tags, quadrants = predict(heads, config, data, val_set)
    figures["val"] = summarise(tags, data.tags[val_set], quadrants, data.quadrants[val_set])
    return figures, heads, midend


def variants(base: MoodTrainConfig) -> dict[str, MoodTrainConfig]:
    """The variants the model card compares (each with `base`'s C unless named)."""
    trunk = replace(base, source="trunk", quadrant="four-way", stack_c=None, soup=1)
    return {
        "tuned mid-end, four-way quadrant": replace(trunk, source="tuned"),
        "tuned mid-end, soup of 3, four-way quadrant": replace(trunk, source="tuned", soup=3),
        **{
            f"tuned mid-end, second stage C {stack_c:g}, four-way quadrant": replace(
                trunk, source="tuned", stack_c=stack_c
            )
            for stack_c in (0.03, 0.1, 1.0)
        },
        "trunk, four-way quadrant": trunk,
        "trunk, valence/arousal signs": replace(trunk, quadrant="signs"),
        "embedding, four-way quadrant": replace(trunk, source="embedding"),
        "embedding, valence/arousal signs": replace(trunk, source="embedding", quadrant="signs"),
        "trunk, four-way quadrant, C / 3": replace(trunk, c=base.c / 3),
        "trunk, four-way quadrant, C x 3": replace(trunk, c=base.c * 3),
        "MTT trunk, four-way quadrant": replace(trunk, source="mtt"),
        "MSD + MTT trunks, four-way quadrant": replace(trunk, source="trunks"),
        "MSD + MTT trunks, four-way quadrant, C / 3": replace(trunk, source="trunks", c=base.c / 3),
        "MSD + MTT trunks, four-way quadrant, C / 10": replace(
            trunk, source="trunks", c=base.c / 10
        ),
        "MSD + MTT trunks + tag logits, four-way quadrant": replace(trunk, source="trunks+tags"),
        "MSD trunk + MSD and MTT tag logits, four-way quadrant": replace(
            trunk, source="trunk+tags"
        ),
        **{
            f"{name}, second stage C 0.1, four-way quadrant": replace(
                trunk, source=name, stack_c=STACK_C
            )
            for name in TAGGERS
        },
        "trunk, second stage C 0.1, four-way quadrant": replace(trunk, stack_c=STACK_C),
        **{
            f"{base} + {name}, second stage C 0.1, four-way quadrant": replace(
                trunk, source=f"{source}+{name}", stack_c=STACK_C
            )
            for base, source in (("tuned mid-end", "tuned"), ("trunk", "trunk"))
            for name in TAGGERS
        },
    }


def install_heads(
    checkpoint: Path,
    out: Path,
    heads: dict[str, nn.Linear],
    source: str,
    figures: dict,
    midend: MusicnnBackend | None = None,
) -> None:
    """Write the checkpoint's encoder with the fitted mood heads (and the mid-end they read,
    for "tuned") added or replaced.

    Raises:
        RuntimeError: when any other weight already in the checkpoint would change.
    """
    encoder, labels, metrics = StudioEncoder.from_checkpoint(checkpoint)
    config = encoder.config
    kept = [h for h in config.heads if h[0] not in MOOD_HEADS]
    kept_trunk = [h for h in config.trunk_heads if h[0] not in MOOD_HEADS]
    mood = [(name, heads[name].out_features) for name in MOOD_HEADS]
    if source in TRUNK_HEAD_SOURCES:
        config = replace(config, heads=tuple(kept), trunk_heads=(*kept_trunk, *mood))
    else:
        config = replace(config, heads=(*kept, *mood), trunk_heads=tuple(kept_trunk))
    updated = StudioEncoder(replace(config, head_midend=midend is not None))
    prefix = "trunk_heads" if source in TRUNK_HEAD_SOURCES else "heads"
    state = {k: v for k, v in encoder.state_dict().items() if k in updated.state_dict()}
    for name in MOOD_HEADS:
        state |= {f"{prefix}.{name}.{k}": v for k, v in heads[name].state_dict().items()}
    if midend is not None:
        state |= {f"trunk.head_midend.{k}": v for k, v in midend.state_dict().items()}
    updated.load_state_dict(state)
    before, after = encoder.state_dict(), updated.state_dict()
    changed = [
        k
        for k in before
        if not k.startswith("trunk.head_midend.")
        if k.split(".")[1] not in MOOD_HEADS or not k.startswith(("heads.", "trunk_heads."))
        if k not in after or not torch.equal(before[k], after[k])
    ]
    if changed:
        raise RuntimeError(f"installing the mood heads would change {changed}")
    labels = {**labels, "mood": list(MOOD_TAGS), "quadrant": list(QUADRANTS)}
    updated.eval().save(out, labels=labels, metrics={**metrics, "mood": figures})


def main() -> None:
    """Measure the variants, or fit the chosen one and write it into the checkpoint."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--cache", type=Path, default=default_cache_dir())
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--out", type=Path, help="write here (default: over --checkpoint)")
    parser.add_argument(
        "--variants", nargs="*", metavar="NAME", help="measure these variants (none named: all)"
    )
    parser.add_argument(
        "--cv-only", action="store_true", help="with --variants: cross-validation, no val"
    )
    parser.add_argument("--source", choices=SOURCES, default="tuned")
    parser.add_argument("--quadrant", choices=("four-way", "signs"), default="four-way")
    parser.add_argument("--c", type=float, default=1e-3, help="inverse L2 strength")
    parser.add_argument(
        "--stack-c", type=float, default=STACK_C, help="second stage's C (0: no second stage)"
    )
    parser.add_argument("--soup", type=int, default=1, help="tuned mid-ends averaged (tuned)")
    parser.add_argument("--figures", type=Path, default=Path("bench/results/mood_train.json"))
    args = parser.parse_args()
    config = MoodTrainConfig(args.source, args.quadrant, args.c, args.stack_c or None, args.soup)
    measured: dict[str, MoodTrainConfig] = {}
    if args.variants is None:
        if config.quadrant != "four-way":
            parser.error("engine.mood reads a four-way quadrant head: --quadrant signs is measured")
        if config.source not in (*TRUNK_HEAD_SOURCES, "embedding"):
            parser.error(f"the studio encoder has no {config.source!r} mood heads: it is measured")
    else:
        measured = variants(config)
        unknown = set(args.variants) - set(measured)
        if unknown:
            parser.error(f"unknown variants {sorted(unknown)}; known: {list(measured)}")
        measured = {k: v for k, v in measured.items() if not args.variants or k in args.variants}
    sources = {config.source} | {v.source for v in measured.values()}
    data = load_data(
        args.data,
        args.cache,
        args.checkpoint,
        mtt=bool(sources & set(SECOND_TRUNK_SOURCES)),
        fronts=any("tuned" in s.split("+") for s in sources),
        taggers=tuple(name for name in TAGGERS if any(name in s.split("+") for s in sources)),
    )
    if args.variants is not None:
        memo: TunedMemo = {}
        figures = {
            name: evaluate(variant, data, val=not args.cv_only, memo=memo)[0]
            for name, variant in measured.items()
        }
    else:
        figures, heads, midend = evaluate(config, data)
        assert heads is not None
        out = args.out or args.checkpoint
        install_heads(args.checkpoint, out, heads, config.source, figures, midend)
    args.figures.parent.mkdir(parents=True, exist_ok=True)
    args.figures.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
