"""A deterministic, simulated listening community for demos and the mood benchmark.

SIMULATED: these listeners are not people. They are drawn from a seed so the Mood page has a
community to personalise with, and `bench/mood.py` has listeners whose perception is known.

- Listeners belong to cultural groups; each group hears some moods more readily and others
  less (a shift of the log-odds per tag), and each listener adds a little of their own.
- The follow graph is a stochastic block model: like follows like, rarely across groups.
- Each listener makes a few playlists around a mood they hear, fills them with tracks they
  hear it in, and tags them: the theme, moods the tracks share for them, and now and then a
  tag outside the studio's twelve (dropped on import, as real data would be).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np

SEED = 0
GROUP_BIASES: dict[str, dict[str, float]] = {  # log-odds shift per tag, per group
    "group 1": {"sadness": 3.0, "loneliness": 2.4, "nostalgia": 2.0, "joy": -3.0, "warmth": -2.0},
    "group 2": {"joy": 3.0, "passion": 2.4, "warmth": 2.0, "sadness": -3.0, "quiet": -2.4},
    "group 3": {"healing": 3.0, "quiet": 2.4, "romance": 2.0, "passion": -3.0, "missing": -2.0},
    "group 4": {"moving": 3.0, "missing": 2.4, "lovelorn": 2.4, "healing": -2.4, "joy": -1.6},
}
FOLLOW_WITHIN = 0.08  # chance a listener follows another of their group
FOLLOW_ACROSS = 0.004  # ... and one of another group
PERSONAL_SPREAD = 0.3  # standard deviation of a listener's own shift per tag
PLAYLISTS = (2, 4)  # playlists per listener, inclusive range
PLAYLIST_TRACKS = (6, 12)  # tracks per playlist, inclusive range
OTHER_TAGS = ("workout", "roadtrip", "study", "party", "chill vibes")  # outside the twelve
OTHER_TAG_CHANCE = 0.15
FIRST_NAMES = (
    "Ada",
    "Bo",
    "Cleo",
    "Dev",
    "Eli",
    "Fen",
    "Gus",
    "Hana",
    "Ines",
    "Jun",
    "Kai",
    "Lena",
    "Milo",
    "Nia",
    "Oren",
    "Pia",
    "Quin",
    "Rae",
    "Sol",
    "Tove",
    "Uma",
    "Vik",
    "Wren",
    "Xia",
    "Yuri",
    "Zoe",
)


@dataclass(frozen=True)
class SimulatedListener:
    """A simulated listener and how they hear."""

    listener_id: str
    name: str
    group: str
    shift: np.ndarray  # log-odds shift per tag (group bias + their own)


@dataclass(frozen=True)
class Playlist:
    """A simulated playlist."""

    playlist_id: str
    listener_id: str
    title: str
    tracks: tuple[int, ...]
    tags: tuple[str, ...]  # may include tags outside the twelve


@dataclass(frozen=True)
class Community:
    """A simulated community: listeners, follows and playlists."""

    listeners: tuple[SimulatedListener, ...]
    follows: tuple[tuple[str, str], ...]
    playlists: tuple[Playlist, ...]

    def write_csv(self, folder: str | Path) -> Path:
        """Write it as the community CSV files `Library.import_community` reads."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        rows = {
            "listeners.csv": [("listener_id", "name", "group", "simulated")]
            + [(x.listener_id, x.name, x.group, 1) for x in self.listeners],
            "follows.csv": [("follower", "followee"), *self.follows],
            "playlists.csv": [("playlist_id", "listener_id", "title")]
            + [(p.playlist_id, p.listener_id, p.title) for p in self.playlists],
            "playlist_tracks.csv": [("playlist_id", "track_id")]
            + [(p.playlist_id, t) for p in self.playlists for t in p.tracks],
            "playlist_tags.csv": [("playlist_id", "tag")]
            + [(p.playlist_id, t) for p in self.playlists for t in p.tags],
        }
        for name, table in rows.items():
            with (folder / name).open("w", newline="", encoding="utf-8") as handle:
                csv.writer(handle).writerows(table)
        return folder


def perceived(listener: SimulatedListener, base: np.ndarray) -> np.ndarray:
    """Probability that the listener hears each tag in a track whose base probability is `base`."""
    p = np.clip(base, 1e-3, 1 - 1e-3)
    return 1.0 / (1.0 + np.exp(-(np.log(p / (1 - p)) + listener.shift)))


def simulate(
    track_moods: Mapping[int, Sequence[float]],
    tags: Sequence[str],
    *,
    listeners: int = 200,
    seed: int = SEED,
) -> Community:
    """Draw a community over the given tracks.

    Args:
        track_moods: {track id: base probability per tag, in `tags` order}; e.g. the crowd
            model's predictions, or labels smoothed to probabilities.
        tags: the tag vocabulary.
        listeners: how many listeners, spread evenly over the groups.
        seed: the same seed gives the same community.
    """
    rng = np.random.default_rng(seed)
    groups = list(GROUP_BIASES)
    sizes = [listeners // len(groups) + (i < listeners % len(groups)) for i in range(len(groups))]
    people: list[SimulatedListener] = []
    for group, size in zip(groups, sizes, strict=True):
        bias = np.array([GROUP_BIASES[group].get(tag, 0.0) for tag in tags])
        for _ in range(size):
            number = len(people) + 1
            name = f"{FIRST_NAMES[(number - 1) % len(FIRST_NAMES)]} {number:03d}"
            shift = bias + rng.normal(0.0, PERSONAL_SPREAD, len(tags))
            people.append(SimulatedListener(f"sim-{number:03d}", name, group, shift))
    chances = [[FOLLOW_WITHIN if a == b else FOLLOW_ACROSS for b in groups] for a in groups]
    graph = nx.stochastic_block_model(sizes, chances, seed=seed, directed=True)
    follows = tuple(
        (people[u].listener_id, people[v].listener_id) for u, v in sorted(graph.edges())
    )
    track_ids = np.array(sorted(track_moods))
    base = np.array([track_moods[t] for t in track_ids], dtype=np.float64)
    playlists: list[Playlist] = []
    for person in people:
        hears = perceived(person, base)  # (tracks, tags)
        for k in range(rng.integers(PLAYLISTS[0], PLAYLISTS[1] + 1)):
            liking = hears.mean(axis=0)
            theme = int(rng.choice(len(tags), p=liking / liking.sum()))
            count = min(
                len(track_ids), int(rng.integers(PLAYLIST_TRACKS[0], PLAYLIST_TRACKS[1] + 1))
            )
            weights = hears[:, theme] ** 2 + 1e-9
            chosen = rng.choice(
                len(track_ids), size=count, replace=False, p=weights / weights.sum()
            )
            shared = hears[chosen].mean(axis=0)
            shared[theme] = 0.0
            extra = [tags[i] for i in np.argsort(-shared)[:2] if shared[i] >= 0.5]
            playlist_tags = [tags[theme], *extra]
            if rng.random() < OTHER_TAG_CHANCE:
                playlist_tags.append(str(rng.choice(OTHER_TAGS)))
            playlists.append(
                Playlist(
                    playlist_id=f"{person.listener_id}-{k + 1}",
                    listener_id=person.listener_id,
                    title=f"{tags[theme].capitalize()} by {person.name}",
                    tracks=tuple(int(t) for t in sorted(track_ids[chosen])),
                    tags=tuple(playlist_tags),
                )
            )
    return Community(tuple(people), follows, tuple(playlists))
