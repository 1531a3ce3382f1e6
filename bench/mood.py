"""Benchmark of personalised moods (issue 4): personalised against crowd, and with feedback.

The community is SIMULATED (engine.community) over the real mer4q val clips: listeners hear
each clip's AllMusic-derived tags shifted by their group's bias, follow like-minded listeners
and tag playlists. The crowd model is the shipped encoder's mood head, run on the real audio.

Tracks are split in two, seeded: a listener's calibration may use the community's votes on the
first half; every figure is measured on the second half (held-out tracks), against the
listener's personalised truth there (the weighted vote of the listeners they follow).
Per-listener MAP = the mean over held-out tracks of the average precision of the 12 tags
ranked by the prediction; the figures average it over listeners.

    python -m bench.mood [--data ../shared/data] [--out bench/results/mood.json]

Choices (the calibration prior) are made with `--selection`: it splits the calibration half
again and measures on its second part, so the held-out tracks play no part in them.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score
from tqdm import tqdm

from engine import listeners
from engine.community import SimulatedListener, perceived, simulate
from engine.mood import MOOD_TAGS

FEEDBACK_COUNTS = (0, 5, 20)  # answers per listener
LABEL_ON, LABEL_OFF = 0.8, 0.08  # a clip's base chance of being heard with / without the tag
OFFERED_TAGS = 6  # the page offers the listener's likeliest tags for yes/no


def listener_map(truth: np.ndarray, scores: np.ndarray) -> float:
    """Mean over tracks (rows) of the average precision of the tags ranked by `scores`.

    Tracks without a true tag are skipped; NaN when none is left.
    """
    keep = truth.sum(axis=1) > 0
    if not keep.any():
        return float("nan")
    return float(
        np.mean(
            [average_precision_score(t, s) for t, s in zip(truth[keep], scores[keep], strict=True)]
        )
    )


def truth_matrix(
    weights: dict[str, float], votes: dict[int, dict[str, set[str]]], tracks: Sequence[int]
) -> np.ndarray:
    """(tracks, tags) 0/1: each track's personalised truth for one listener."""
    out = np.zeros((len(tracks), len(MOOD_TAGS)))
    index = {tag: i for i, tag in enumerate(MOOD_TAGS)}
    for row, track in enumerate(tracks):
        for tag, _ in listeners.personalized_truth(votes.get(track, {}), weights):
            out[row, index[tag]] = 1.0
    return out


def predict(
    crowd: np.ndarray,
    examples: listeners.ListenerExamples,
    types: listeners.ListenerTypes,
    answers: Sequence[listeners.Answer],
    prior: float = listeners.PRIOR,
) -> np.ndarray:
    """One listener's probabilities for rows of crowd probabilities (tracks, tags)."""
    own = examples.fit(prior=prior)
    indexed = [(MOOD_TAGS.index(tag), accepted, p) for tag, accepted, p in answers]
    return np.stack([listeners.mixture_probabilities(row, own, types, indexed) for row in crowd])


def simulated_answers(
    person: SimulatedListener,
    examples: listeners.ListenerExamples,
    types: listeners.ListenerTypes,
    crowd: np.ndarray,
    base: np.ndarray,
    tracks: Sequence[int],
    count: int,
    rng: np.random.Generator,
    prior: float = listeners.PRIOR,
) -> list[listeners.Answer]:
    """`count` yes/no answers, one at a time, as the Mood page asks them.

    Each answer is about a random calibration track and one of the tags the listener's
    current prediction ranks highest; the listener answers from how they hear the track.
    """
    answers: list[listeners.Answer] = []
    for _ in range(count):
        track = int(rng.choice(tracks))
        current = predict(crowd[track][None], examples, types, answers, prior)[0]
        tag = int(rng.choice(np.argsort(-current)[:OFFERED_TAGS]))
        heard = rng.random() < perceived(person, base[track])[tag]
        answers.append((MOOD_TAGS[tag], bool(heard), float(crowd[track, tag])))
    return answers


def crowd_predictions(data_dir: Path, clip_ids: Sequence[str], cache: Path) -> np.ndarray:
    """The shipped mood model's tag probabilities for each clip (cached per checkpoint)."""
    from engine.audio import load
    from engine.files import fingerprint
    from engine.genre import DEFAULT_CHECKPOINT, load_classifier
    from engine.mood import predict_moods

    digest = fingerprint(DEFAULT_CHECKPOINT)[:12]
    path = cache / f"mood_bench_crowd-{digest}.json"
    stored = json.loads(path.read_text()) if path.is_file() else {}
    missing = [c for c in clip_ids if c not in stored]
    if missing:
        classifier = load_classifier()
        for clip_id in tqdm(missing, desc="crowd moods", unit="clip"):
            clip = load(data_dir / "mer4q" / "audio" / f"{clip_id}.ogg")
            tags = predict_moods(clip, classifier).tags
            stored[clip_id] = [tags[t] for t in MOOD_TAGS]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(stored))
    return np.array([stored[c] for c in clip_ids])


def run(
    data_dir: Path,
    *,
    listeners_count: int,
    seed: int,
    cache: Path,
    prior: float = listeners.PRIOR,
    selection: bool = False,
) -> dict:
    """Simulate the community, then measure crowd, personalised and feedback MAPs.

    With `selection`, the calibration tracks are split again (seeded): calibration on the
    first part, figures on the second; the held-out tracks are not used.
    """
    from engine.train.mood_data import read_clips, read_tag_sets, tag_targets

    clips = [c for c in read_clips(data_dir) if c.split == "val"]
    labels = tag_targets([c.moods for c in clips], read_tag_sets(data_dir))
    crowd = crowd_predictions(data_dir, [c.clip_id for c in clips], cache)
    base = np.where(labels > 0, LABEL_ON, LABEL_OFF)
    tracks = list(range(len(clips)))
    community = simulate(
        {t: base[t] for t in tracks}, MOOD_TAGS, listeners=listeners_count, seed=seed
    )
    votes: dict[int, dict[str, set[str]]] = {}
    for playlist in community.playlists:
        kept = {tag for tag in playlist.tags if tag in MOOD_TAGS}
        for track in playlist.tracks:
            votes.setdefault(track, {}).setdefault(playlist.listener_id, set()).update(kept)
    rng = np.random.default_rng(seed)
    order = rng.permutation(tracks)
    if selection:
        order = rng.permutation(order[: len(order) // 2])
    calibration_tracks, heldout = sorted(order[: len(order) // 2]), sorted(order[len(order) // 2 :])
    graph = listeners.follow_graph(community.follows, [x.listener_id for x in community.listeners])
    crowd_by_track = {t: dict(zip(MOOD_TAGS, crowd[t], strict=True)) for t in tracks}

    examples = {}
    for person in tqdm(community.listeners, desc="calibrations", unit="listener"):
        weights = listeners.voter_weights(graph, person.listener_id)
        examples[person.listener_id] = listeners.community_examples(
            MOOD_TAGS, weights, votes, crowd_by_track, tracks=calibration_tracks
        )
    calibrations = {k: e.fit(prior=prior) for k, e in examples.items()}

    rows = []
    for person in tqdm(community.listeners, desc="listeners", unit="listener"):
        weights = listeners.voter_weights(graph, person.listener_id)
        truth = truth_matrix(weights, votes, heldout)
        if truth.sum() == 0:
            continue  # nobody this listener follows tagged a held-out track
        others = listeners.stack_calibrations(
            {k: c for k, c in calibrations.items() if k != person.listener_id}
        )
        mine = examples[person.listener_id]
        row = {"crowd": listener_map(truth, crowd[heldout])}
        answer_rng = np.random.default_rng([seed, int(person.listener_id[4:])])
        for count in FEEDBACK_COUNTS:
            for name, start in (("feedback", mine), ("cold_start", mine.empty(len(MOOD_TAGS)))):
                answers = simulated_answers(
                    person, start, others, crowd, base, calibration_tracks, count, answer_rng, prior
                )
                scores = predict(crowd[heldout], start, others, answers, prior)
                row[f"{name}_{count}"] = listener_map(truth, scores)
        row["personalized"] = row["feedback_0"]
        rows.append(row)

    def mean(key: str) -> float:
        return round(float(np.nanmean([r[key] for r in rows])), 4)

    return {
        "simulated": True,
        "tracks": {"calibration": len(calibration_tracks), "heldout": len(heldout)},
        "listeners": len(community.listeners),
        "listeners_measured": len(rows),
        "follows": len(community.follows),
        "playlists": len(community.playlists),
        "crowd_map": mean("crowd"),
        "personalized_map": mean("personalized"),
        "share_of_listeners_better": round(
            float(np.mean([r["personalized"] > r["crowd"] for r in rows])), 4
        ),
        "map_after_feedback": {str(n): mean(f"feedback_{n}") for n in FEEDBACK_COUNTS},
        "cold_start_map_after_feedback": {str(n): mean(f"cold_start_{n}") for n in FEEDBACK_COUNTS},
        "seed": seed,
        "prior": prior,
        "selection": selection,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print (and write) its JSON."""
    from engine.train.dataset import DEFAULT_DATA_DIR, default_cache_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--listeners", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prior", type=float, default=listeners.PRIOR, help="calibration prior")
    parser.add_argument(
        "--selection", action="store_true", help="measure on part of the calibration tracks"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/mood.json"))
    args = parser.parse_args(argv)
    figures = run(
        args.data,
        listeners_count=args.listeners,
        seed=args.seed,
        cache=default_cache_dir(),
        prior=args.prior,
        selection=args.selection,
    )
    text = json.dumps(figures, indent=2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
