"""Personalisation: voting weights, personalised truth, calibration and feedback."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq, minimize

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
    moods = listeners.personal_moods(crowd, "ann", {})
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


def penalised_loss(params: np.ndarray, x: np.ndarray, y: np.ndarray, prior: float) -> float:
    """The calibration objective for one tag: log-loss plus the pull towards (a, b) = (1, 0)."""
    a, b = params
    z = a * x + b
    return float(np.sum(np.logaddexp(0, z) - y * z) + prior / 2 * ((a - 1) ** 2 + b**2))


def test_calibration_converges_from_extreme_crowd_logits() -> None:
    # Crowd logits near -9 made the undamped Newton steps overshoot (to a = 6.03 here).
    crowd = np.array([[1e-4], [1e-4], [1e-4], [0.2], [0.3], [0.5]])
    truth = np.array([[1.0], [1.0], [0.0], [1.0], [0.0], [1.0]])
    calibration = listeners.fit_calibration(crowd, truth, np.ones_like(crowd), prior=2.0)
    x = np.log(crowd[:, 0] / (1 - crowd[:, 0]))
    best = minimize(
        penalised_loss, [1.0, 0.0], args=(x, truth[:, 0], 2.0), method="BFGS", tol=1e-12
    ).x
    assert [calibration.scale[0], calibration.shift[0]] == pytest.approx(best, abs=1e-5)
    assert abs(calibration.scale[0]) < 0.05  # the crowd says nothing useful here
    assert calibration.evidence == 6.0


def test_calibration_shifts_only_when_the_crowd_is_undecided() -> None:
    crowd = np.full((4, 2), 0.5)  # logit 0: the scale has nothing to act on
    truth = np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    calibration = listeners.fit_calibration(crowd, truth, np.ones_like(crowd), prior=2.0)
    assert calibration.scale == pytest.approx([1.0, 1.0])
    one_in_four = brentq(lambda b: 4 * sigmoid(b) - 1 + 2 * b, -5, 5)  # gradient = 0
    assert calibration.shift == pytest.approx([one_in_four, 0.0], abs=1e-9)
    assert one_in_four < -0.2


def hears(quiet_shift: float, evidence: float = 500.0) -> listeners.Calibration:
    """A calibration that hears "quiet" shifted by `quiet_shift` log-odds, the rest as is."""
    return listeners.Calibration(np.ones(3), np.array([0.0, 0.0, quiet_shift]), evidence)


def sigmoid(x: float) -> float:
    return 1 / (1 + np.exp(-x))


def test_answers_say_which_way_of_hearing_is_the_listeners() -> None:
    crowd = {"joy": 0.3, "sadness": 0.3, "quiet": 0.3}
    community = {"calm-lover": hears(3.0), "quiet-hater": hears(-3.0)}
    before = listeners.personal_moods(crowd, "new", community)
    logit = np.log(0.3 / 0.7)  # the two ways of hearing weigh the same before any answer
    assert before.tags["quiet"] == pytest.approx(
        0.5 * (sigmoid(logit + 3) + sigmoid(logit - 3)), abs=1e-3
    )
    yes = listeners.personal_moods(crowd, "new", community, [("quiet", True, 0.3)] * 3)
    no = listeners.personal_moods(crowd, "new", community, [("quiet", False, 0.3)] * 3)
    assert yes.tags["quiet"] > 0.85 > 0.05 > no.tags["quiet"]
    assert yes.tags["joy"] == pytest.approx(0.3, abs=1e-3)  # no one hears joy differently
    assert yes.evidence == 0.0  # the listener's own calibration rests on nothing


def test_own_calibration_wins_until_answers_contradict_it() -> None:
    crowd = {"joy": 0.3, "sadness": 0.3, "quiet": 0.3}
    community = {"me": hears(3.0), "other": hears(-3.0)}
    mine = listeners.personal_moods(crowd, "me", community)
    assert mine.tags["quiet"] > 0.85 and mine.evidence == 500.0
    contradicted = listeners.personal_moods(crowd, "me", community, [("quiet", False, 0.3)] * 5)
    assert contradicted.tags["quiet"] < 0.1


def test_an_answer_about_this_clip_wins_outright() -> None:
    crowd = {"joy": 0.3, "sadness": 0.3, "quiet": 0.3}
    moods = listeners.personal_moods(crowd, "ann", {}, clip_answers={"sadness": True, "joy": False})
    assert moods.tags["sadness"] == 1.0 and moods.tags["joy"] == 0.0
    assert moods.top_tags == ["sadness"] and moods.answers == {"sadness": True, "joy": False}
    ignored = listeners.personal_moods(crowd, "ann", {}, [("gym", True, 0.5)], {"gym": True})
    assert "gym" not in ignored.tags


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
