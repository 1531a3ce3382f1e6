"""Personalisation: voting weights, personalised truth, calibration and feedback."""

from __future__ import annotations

import numpy as np
import pytest

from engine import listeners
from engine.community import GROUP_BIASES, perceived, simulate

TAGS = ("joy", "sadness", "quiet")


@pytest.fixture
def graph():
    """ann -> bob -> cat -> dan, ann -> eve; fay follows ann but nobody follows fay."""
    edges = [("ann", "bob"), ("bob", "cat"), ("cat", "dan"), ("ann", "eve"), ("fay", "ann")]
    return listeners.follow_graph(edges, ["ann", "bob", "cat", "dan", "eve", "fay", "gil"])


def test_voter_weights_follow_the_steps(graph) -> None:
    assert listeners.voter_weights(graph, "ann") == {
        "bob": 1.0,
        "eve": 1.0,
        "cat": 0.5,
        "dan": 1 / 3,
    }
    assert listeners.voter_weights(graph, "dan") == {}  # follows nobody
    assert listeners.voter_weights(graph, "fay") == {
        "ann": 1.0,
        "bob": 0.5,
        "eve": 0.5,
        "cat": 1 / 3,
        "dan": 0.25,
    }
    assert listeners.voter_weights(graph, "nobody") == {}


def test_personalized_truth_is_the_weighted_vote(graph) -> None:
    weights = listeners.voter_weights(graph, "ann")
    votes = {
        "bob": {"joy"},  # 1
        "eve": {"quiet", "joy"},  # 1
        "cat": {"sadness", "quiet"},  # 1/2
        "dan": {"sadness"},  # 1/3
        "fay": {"sadness"},  # out of ann's reach: no vote
        "ann": {"sadness"},  # her own tags are not a vote
    }
    truth = listeners.personalized_truth(votes, weights, k=3)
    assert [tag for tag, _ in truth] == ["joy", "quiet", "sadness"]
    assert [w for _, w in truth] == pytest.approx([2.0, 1.5, 0.5 + 1 / 3])
    assert listeners.personalized_truth(votes, weights, k=1) == [("joy", 2.0)]
    assert listeners.personalized_truth({"fay": {"joy"}}, weights) == []


def test_ties_are_broken_by_tag_name() -> None:
    truth = listeners.personalized_truth({"a": {"b-tag", "a-tag"}}, {"a": 1.0})
    assert truth == [("a-tag", 1.0), ("b-tag", 1.0)]


def test_without_evidence_the_crowd_stands() -> None:
    crowd = {"joy": 0.8, "sadness": 0.1, "quiet": 0.4}
    moods = listeners.personal_moods(crowd, "ann", listeners.ListenerExamples.empty(3))
    assert moods.tags == pytest.approx(crowd, abs=1e-4)
    assert moods.top_tags == ["joy"] and moods.evidence == 0.0


def test_calibration_learns_a_listener_who_hears_more_sadness() -> None:
    rng = np.random.default_rng(0)
    crowd = rng.uniform(0.05, 0.95, size=(200, 3))
    hears = crowd.copy()
    hears[:, 1] = 1 / (1 + np.exp(-(np.log(crowd[:, 1] / (1 - crowd[:, 1])) + 2.0)))
    truth = (rng.random(hears.shape) < hears).astype(float)
    calibration = listeners.fit_calibration(crowd, truth, np.ones_like(crowd))
    assert calibration.shift[1] > 1.2  # sadness: heard much more readily than the crowd says
    assert abs(calibration.shift[0]) < 0.5 and abs(calibration.shift[2]) < 0.5
    assert calibration.apply(np.array([0.5, 0.5, 0.5]))[1] > 0.75


def test_feedback_changes_the_next_prediction() -> None:
    crowd = {"joy": 0.3, "sadness": 0.3, "quiet": 0.3}
    before = listeners.personal_moods(crowd, "ann", listeners.ListenerExamples.empty(3))
    answers = [("quiet", True, 0.3)] * 5 + [("joy", False, 0.6)] * 5
    examples = listeners.feedback_examples(TAGS, answers)
    after = listeners.personal_moods(crowd, "ann", examples)
    assert after.tags["quiet"] > before.tags["quiet"] + 0.15
    assert after.tags["joy"] < before.tags["joy"] - 0.1
    assert after.tags["sadness"] == pytest.approx(before.tags["sadness"], abs=1e-3)
    # An answer about this very clip wins outright.
    mine = listeners.personal_moods(crowd, "ann", examples, answers={"sadness": True})
    assert mine.tags["sadness"] == 1.0 and mine.top_tags[0] == "sadness"


def test_feedback_ignores_unknown_tags() -> None:
    examples = listeners.feedback_examples(TAGS, [("gym", True, 0.5), ("joy", True, 0.5)])
    assert examples.crowd.shape == (1, 3) and examples.weight[0].tolist() == [4.0, 0.0, 0.0]


def test_neighbourhood_nearest_first(graph) -> None:
    voters = listeners.neighbourhood(graph, "ann", radius=2)
    assert [(v.listener_id, v.steps, v.weight) for v in voters] == [
        ("bob", 1, 1.0),
        ("eve", 1, 1.0),
        ("cat", 2, 0.5),
    ]


def test_top_tags() -> None:
    assert listeners.top_tags({"a": 0.9, "b": 0.6, "c": 0.55, "d": 0.51}) == ["a", "b", "c"]
    assert listeners.top_tags({"a": 0.2, "b": 0.3}) == ["b"]


def test_simulated_community_is_deterministic_and_like_follows_like() -> None:
    tags = ("sadness", "joy", "quiet", "healing")
    moods = {t: np.full(4, 0.3) for t in range(40)}
    one, two = (
        simulate(moods, tags, listeners=40, seed=3),
        simulate(moods, tags, listeners=40, seed=3),
    )
    assert one.follows == two.follows and one.playlists == two.playlists
    assert len(one.listeners) == 40 and len({x.group for x in one.listeners}) == len(GROUP_BIASES)
    group = {x.listener_id: x.group for x in one.listeners}
    within = sum(group[a] == group[b] for a, b in one.follows)
    assert within > 0.7 * len(one.follows)
    sad = next(x for x in one.listeners if x.group == "group 1")
    assert perceived(sad, np.full(4, 0.3))[0] > 0.5 > perceived(sad, np.full(4, 0.3))[1]
