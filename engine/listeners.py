"""Personalised moods: a listener's truth from the follow graph, and predictions tuned to them.

The method: listeners follow listeners; their playlists' tags pass to the playlists' tracks.
A listener's *personalised truth* for a track is the weighted vote of the other listeners' tags
on it, each voter weighted by how close they are in the follow graph (1/d for d steps: direct
follows 1, two steps 1/2, ...; listeners out of reach do not vote); the top k tags are kept.
One breadth-first walk gives every voter's weight (O(|E| + |U|)), and one sort ranks the tags
(O(n log n)).

A listener's *personalised prediction* for a new clip recalibrates the crowd model per tag,
p' = sigmoid(a * logit(p) + b), fitted to their personalised truth on the tracks the community
tagged (a prior pulls (a, b) towards (1, 0): with no evidence the crowd's answer stands). Their
own yes/no answers then say which of the community's ways of hearing (every listener's
calibration) is most like theirs: the prediction mixes the listener's own calibration and the
community's by how well each predicts the answers. An answer about a clip also wins outright
for that clip.
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
OWN_HALF_EVIDENCE = 20.0  # evidence at which the own calibration gets half the prior weight
PRIOR = 10.0  # pull towards the crowd's (a, b) = (1, 0); chosen by bench.mood --selection
NEWTON_STEPS = 20
HALVINGS = 30  # at most this many halvings of a Newton step that overshoots
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

    Each Newton step is halved until the penalised loss goes down: a full step from (1, 0)
    can overshoot far (crowd logits reach +-9), and the undamped method then diverges.

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

    def loss(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        z = a * x + b
        data = (w * (np.logaddexp(0.0, z) - y * z)).sum(0)
        return data + 0.5 * prior * ((a - 1) ** 2 + b**2)

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
        size, before = np.ones(tags), loss(a, b)
        for _ in range(HALVINGS):
            worse = loss(a - size * step[:, 0], b - size * step[:, 1]) > before
            if not worse.any():
                break
            size[worse] /= 2
        else:
            size[worse] = 0.0  # no step lowers the loss: at the optimum up to rounding
        a, b = a - size * step[:, 0], b - size * step[:, 1]
    return Calibration(scale=a, shift=b, evidence=float(w.sum()))


@dataclass(frozen=True)
class ListenerTypes:
    """How the community's listeners hear: one calibration per listener, stacked.

    A listener's answers say which of these ways of hearing is theirs: `posterior` weighs
    each by how well it predicts the answers.
    """

    listener_ids: tuple[str, ...]
    scale: np.ndarray  # (listeners, tags)
    shift: np.ndarray  # (listeners, tags)

    def apply(self, crowd: np.ndarray) -> np.ndarray:
        """Each listener's probabilities for crowd probabilities (tags,): (listeners, tags)."""
        return _sigmoid(self.scale * _logit(np.asarray(crowd))[None, :] + self.shift)

    def log_likelihood(self, answers: Sequence[tuple[int, bool, float]]) -> np.ndarray:
        """Log-probability of the answers (tag index, accepted, crowd p) under each listener."""
        total = np.zeros(len(self.listener_ids))
        for tag, accepted, probability in answers:
            x = _logit(np.asarray(probability))
            q = np.clip(_sigmoid(self.scale[:, tag] * x + self.shift[:, tag]), _CLIP, 1 - _CLIP)
            total += np.log(q if accepted else 1 - q)
        return total


def stack_calibrations(calibrations: Mapping[str, Calibration]) -> ListenerTypes:
    """Stack listeners' calibrations (those fitted on some evidence) into ListenerTypes."""
    kept = {k: c for k, c in calibrations.items() if c.evidence > 0}
    ids = tuple(sorted(kept))
    tags = next(iter(calibrations.values())).scale.shape[0] if calibrations else 0
    if not ids:
        return ListenerTypes((), np.zeros((0, tags)), np.zeros((0, tags)))
    return ListenerTypes(
        ids, np.stack([kept[i].scale for i in ids]), np.stack([kept[i].shift for i in ids])
    )


def mixture_probabilities(
    crowd: np.ndarray,
    own: Calibration,
    types: ListenerTypes,
    answers: Sequence[tuple[int, bool, float]],
) -> np.ndarray:
    """A listener's probabilities: their own calibration and the community's ways of hearing,
    mixed by how well each predicts the listener's answers.

    Before any answer the listener's own calibration weighs e / (e + OWN_HALF_EVIDENCE) for
    evidence e (none without evidence); the community's types share the rest equally.

    Args:
        crowd: crowd probabilities (tags,).
        own: the listener's calibration (community truth and answers).
        types: the community's calibrations (`stack_calibrations`).
        answers: the listener's answers: (tag index, accepted, crowd probability then).
    """
    if not len(types.listener_ids):
        return own.apply(crowd)
    own_weight = own.evidence / (own.evidence + OWN_HALF_EVIDENCE)
    prior = np.full(len(types.listener_ids) + 1, (1 - own_weight) / len(types.listener_ids))
    prior[0] = own_weight
    own_types = ListenerTypes(("",), own.scale[None], own.shift[None])
    loglik = np.concatenate([own_types.log_likelihood(answers), types.log_likelihood(answers)])
    with np.errstate(divide="ignore"):
        log_post = np.log(prior) + loglik
    posterior = np.exp(log_post - log_post.max())
    posterior /= posterior.sum()
    candidates = np.concatenate([own.apply(crowd)[None], types.apply(crowd)])
    return posterior @ candidates


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
    evidence: float  # weight of the community truth the calibration rests on (0: none)
    answers: dict[str, bool]  # the listener's own answers on this clip, which win


Answer = tuple[str, bool, float]  # (tag, accepted, the crowd's probability of it then)


def personal_moods(
    crowd: Mapping[str, float],
    listener_id: str,
    calibrations: Mapping[str, Calibration],
    answers: Sequence[Answer] = (),
    clip_answers: Mapping[str, bool] | None = None,
) -> PersonalMoods:
    """Personalise a clip's crowd probabilities for one listener.

    Args:
        crowd: the crowd model's probability per tag.
        listener_id: whose prediction it is.
        calibrations: every listener's calibration (`community_calibrations`).
        answers: all of the listener's answers, on any clip.
        clip_answers: their answers about this clip: accepted tags count as 1, rejected as 0.
    """
    tags = list(crowd)
    index = {tag: i for i, tag in enumerate(tags)}
    own = calibrations.get(listener_id) or identity_calibration(len(tags))
    types = stack_calibrations({k: c for k, c in calibrations.items() if k != listener_id})
    indexed = [(index[t], accepted, p) for t, accepted, p in answers if t in index]
    values = mixture_probabilities(np.array([crowd[tag] for tag in tags]), own, types, indexed)
    personal = {tag: round(float(v), 4) for tag, v in zip(tags, values, strict=True)}
    clip_answers = dict(clip_answers or {})
    for tag, accepted in clip_answers.items():
        if tag in personal:
            personal[tag] = 1.0 if accepted else 0.0
    return PersonalMoods(
        listener_id=listener_id,
        tags=personal,
        crowd=dict(crowd),
        top_tags=top_tags(personal),
        evidence=own.evidence,
        answers=clip_answers,
    )


def community_calibrations(library: Library, tags: Sequence[str]) -> dict[str, Calibration]:
    """Every listener's calibration, fitted on their personalised truth in the library."""
    everyone = [x.listener_id for x in library.listeners()]
    graph = follow_graph(library.follows(), everyone)
    votes, crowd = library.track_tags(), library.track_moods()
    return {
        listener: community_examples(tags, voter_weights(graph, listener), votes, crowd).fit()
        for listener in everyone
    }
