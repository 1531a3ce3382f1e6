"""Personalised moods: a listener's truth from the follow graph, and predictions tuned to them.

The method: listeners follow listeners; their playlists' tags pass to the playlists' tracks.
A listener's *personalised truth* for a track is the weighted vote of the other listeners' tags
on it, each voter weighted by how close they are in the follow graph (1/d for d steps: direct
follows 1, two steps 1/2, ...; listeners out of reach do not vote); the top k tags are kept.
One breadth-first walk gives every voter's weight (O(|E| + |U|)), and one sort ranks the tags
(O(n log n)).

A listener's *personalised prediction* for a new clip recalibrates the crowd model per tag,
p' = sigmoid(a * logit(p) + b), fitted to how the listener hears: their personalised truth on
the tracks the community tagged, and their own accept/reject answers (which count more). A
prior pulls (a, b) towards (1, 0), so with no evidence the crowd's answer stands.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np

if TYPE_CHECKING:
    from engine.library import Library

TOP_K = 3  # tags kept in a personalised truth
FEEDBACK_WEIGHT = 4.0  # one answer counts as much as this many community votes
PRIOR = 2.0  # strength of the pull towards the crowd's calibration (a, b) = (1, 0)
NEWTON_STEPS = 12
_CLIP = 1e-4  # probabilities are clipped to [_CLIP, 1 - _CLIP] before the logit


def follow_graph(edges: Iterable[tuple[str, str]], listeners: Iterable[str] = ()) -> nx.DiGraph:
    """The directed follow graph: an edge u -> v when u follows v (weight 1)."""
    graph = nx.DiGraph()
    graph.add_nodes_from(listeners)
    graph.add_edges_from(edges, weight=1)
    return graph


def voter_weights(graph: nx.DiGraph, listener: str) -> dict[str, float]:
    """How much each other listener's tags count for `listener`: 1/d at d follow steps.

    Listeners `listener` cannot reach through follows are left out (weight 0).
    """
    if listener not in graph:
        return {}
    distances = nx.single_source_shortest_path_length(graph, listener)  # breadth-first
    return {voter: 1.0 / steps for voter, steps in distances.items() if steps > 0}


def personalized_truth(
    votes: Mapping[str, Iterable[str]], weights: Mapping[str, float], k: int = TOP_K
) -> list[tuple[str, float]]:
    """A track's top-k tags for one listener: the weighted vote of the other listeners' tags.

    Args:
        votes: each voter's tags on the track.
        weights: each voter's weight for this listener (`voter_weights`).
        k: tags kept.

    Returns:
        (tag, total weight) pairs, heaviest first (ties by tag name); empty without votes.
    """
    totals: dict[str, float] = defaultdict(float)
    for voter, tags in votes.items():
        weight = weights.get(voter, 0.0)
        if weight > 0:
            for tag in tags:
                totals[tag] += weight
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:k]


@dataclass(frozen=True)
class Calibration:
    """Per-tag recalibration of crowd probabilities for one listener."""

    scale: np.ndarray  # a per tag
    shift: np.ndarray  # b per tag
    evidence: float  # total weight of the examples it was fitted on (0: the identity)

    def apply(self, crowd: np.ndarray) -> np.ndarray:
        """Personalised probabilities from crowd probabilities (..., tags)."""
        return _sigmoid(self.scale * _logit(crowd) + self.shift)


def identity_calibration(tags: int) -> Calibration:
    """The calibration that leaves the crowd's probabilities as they are."""
    return Calibration(scale=np.ones(tags), shift=np.zeros(tags), evidence=0.0)


def fit_calibration(
    crowd: np.ndarray, truth: np.ndarray, weight: np.ndarray, *, prior: float = PRIOR
) -> Calibration:
    """Fit (a, b) per tag by Newton's method on weighted log-loss plus a prior towards (1, 0).

    Args:
        crowd: crowd probabilities, (examples, tags).
        truth: 1 where the listener hears the tag, 0 where not, (examples, tags).
        weight: weight of each (example, tag); 0 where the listener's view is unknown.
        prior: strength of the pull towards the identity.
    """
    x = _logit(np.asarray(crowd, dtype=np.float64))
    y = np.asarray(truth, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    tags = x.shape[1]
    a, b = np.ones(tags), np.zeros(tags)
    for _ in range(NEWTON_STEPS):
        p = _sigmoid(a * x + b)
        r = w * (p - y)
        grad = np.stack([(r * x).sum(0) + prior * (a - 1), r.sum(0) + prior * b], axis=1)
        s = w * p * (1 - p)
        h = np.empty((tags, 2, 2))
        h[:, 0, 0] = (s * x * x).sum(0) + prior
        h[:, 0, 1] = h[:, 1, 0] = (s * x).sum(0)
        h[:, 1, 1] = s.sum(0) + prior
        step = np.linalg.solve(h, grad[..., None])[..., 0]
        a, b = a - step[:, 0], b - step[:, 1]
    return Calibration(scale=a, shift=b, evidence=float(w.sum()))


@dataclass(frozen=True)
class ListenerExamples:
    """What is known of how one listener hears: crowd probabilities beside their truth."""

    crowd: np.ndarray  # (examples, tags)
    truth: np.ndarray  # (examples, tags), 0/1
    weight: np.ndarray  # (examples, tags), 0 where unknown

    @classmethod
    def empty(cls, tags: int) -> ListenerExamples:
        """No examples."""
        return cls(np.zeros((0, tags)), np.zeros((0, tags)), np.zeros((0, tags)))

    def fit(self, *, prior: float = PRIOR) -> Calibration:
        """The listener's calibration (the identity without examples)."""
        if not len(self.crowd):
            return identity_calibration(self.crowd.shape[1])
        return fit_calibration(self.crowd, self.truth, self.weight, prior=prior)

    def __add__(self, other: ListenerExamples) -> ListenerExamples:
        return ListenerExamples(
            np.concatenate([self.crowd, other.crowd]),
            np.concatenate([self.truth, other.truth]),
            np.concatenate([self.weight, other.weight]),
        )


def community_examples(
    tags: Sequence[str],
    weights: Mapping[str, float],
    track_votes: Mapping[int, Mapping[str, Iterable[str]]],
    track_crowd: Mapping[int, Mapping[str, float]],
    *,
    tracks: Iterable[int] | None = None,
    k: int = TOP_K,
) -> ListenerExamples:
    """Examples from the listener's personalised truth on community-tagged tracks.

    Args:
        tags: the tag vocabulary, in output order.
        weights: the listener's voter weights (`voter_weights`).
        track_votes: {track: {voter: tags}} from playlists.
        track_crowd: {track: {tag: crowd probability}}.
        tracks: only these tracks (default: every voted track with crowd probabilities).
        k: tags kept in each truth.
    """
    index = {tag: i for i, tag in enumerate(tags)}
    rows, truths = [], []
    for track in tracks if tracks is not None else track_votes:
        if track not in track_crowd or track not in track_votes:
            continue
        truth = personalized_truth(track_votes[track], weights, k)
        if not truth:
            continue
        label = np.zeros(len(tags))
        label[[index[tag] for tag, _ in truth if tag in index]] = 1.0
        rows.append([track_crowd[track].get(tag, 0.0) for tag in tags])
        truths.append(label)
    if not rows:
        return ListenerExamples.empty(len(tags))
    crowd = np.asarray(rows)
    return ListenerExamples(crowd, np.asarray(truths), np.ones_like(crowd))


def feedback_examples(
    tags: Sequence[str], answers: Iterable[tuple[str, bool, float]]
) -> ListenerExamples:
    """Examples from the listener's own answers: (tag, accepted, crowd probability then)."""
    index = {tag: i for i, tag in enumerate(tags)}
    answers = [a for a in answers if a[0] in index]
    crowd = np.full((len(answers), len(tags)), 0.5)
    truth = np.zeros_like(crowd)
    weight = np.zeros_like(crowd)
    for row, (tag, accepted, probability) in enumerate(answers):
        crowd[row, index[tag]] = probability
        truth[row, index[tag]] = float(accepted)
        weight[row, index[tag]] = FEEDBACK_WEIGHT
    return ListenerExamples(crowd, truth, weight)


def top_tags(probabilities: Mapping[str, float], *, at_most: int = TOP_K) -> list[str]:
    """The tags worth showing: those at 0.5 or more (at most `at_most`), else the likeliest."""
    ranked = sorted(probabilities, key=lambda tag: (-probabilities[tag], tag))
    chosen = [tag for tag in ranked[:at_most] if probabilities[tag] >= 0.5]
    return chosen or ranked[:1]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _CLIP, 1 - _CLIP)
    return np.log(p / (1 - p))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class Voter:
    """A listener whose tags count for another, and how much."""

    listener_id: str
    steps: int  # follow steps away (1: followed directly)
    weight: float  # 1 / steps


def neighbourhood(graph: nx.DiGraph, listener: str, *, radius: int = 2) -> list[Voter]:
    """The listeners within `radius` follow steps, nearest first."""
    if listener not in graph:
        return []
    distances = nx.single_source_shortest_path_length(graph, listener, cutoff=radius)
    voters = [Voter(v, d, 1.0 / d) for v, d in distances.items() if d > 0]
    return sorted(voters, key=lambda voter: (voter.steps, voter.listener_id))


@dataclass(frozen=True)
class PersonalMoods:
    """A clip's mood tags for one listener, beside the crowd's."""

    listener_id: str
    tags: dict[str, float]  # personalised probability per tag
    crowd: dict[str, float]  # the crowd model's probability per tag
    top_tags: list[str]  # personalised tags worth showing
    evidence: float  # weight of what the calibration was fitted on (0: none; crowd stands)
    answers: dict[str, bool]  # the listener's own answers on this clip, which win


def personal_moods(
    crowd: Mapping[str, float],
    listener_id: str,
    examples: ListenerExamples,
    answers: Mapping[str, bool] | None = None,
) -> PersonalMoods:
    """Personalise a clip's crowd probabilities with what is known of the listener.

    Args:
        crowd: the crowd model's probability per tag.
        listener_id: whose prediction it is.
        examples: community truth and feedback of the listener (see `community_examples`,
            `feedback_examples`).
        answers: the listener's own answers about this clip (accepted tags count as 1,
            rejected as 0).
    """
    tags = list(crowd)
    calibration = examples.fit()
    values = calibration.apply(np.array([crowd[tag] for tag in tags]))
    personal = {tag: round(float(v), 4) for tag, v in zip(tags, values, strict=True)}
    answers = dict(answers or {})
    for tag, accepted in answers.items():
        if tag in personal:
            personal[tag] = 1.0 if accepted else 0.0
    return PersonalMoods(
        listener_id=listener_id,
        tags=personal,
        crowd=dict(crowd),
        top_tags=top_tags(personal),
        evidence=calibration.evidence,
        answers=answers,
    )


def listener_examples(library: Library, listener_id: str, tags: Sequence[str]) -> ListenerExamples:
    """Everything the library knows of how a listener hears: community truth and answers."""
    graph = follow_graph(library.follows(), [x.listener_id for x in library.listeners()])
    community = community_examples(
        tags, voter_weights(graph, listener_id), library.track_tags(), library.track_moods()
    )
    answers = [(f.tag, f.accepted, f.crowd) for f in library.feedback(listener_id)]
    return community + feedback_examples(tags, answers)
