"""The demo library and its simulated community, built on first run from what ships here.

Tracks: the bundled example clips (examples/) and the generator's held-out real pieces
(checkpoints/generator_heldout/, ten styles), rendered with FluidSynth. The community is
SIMULATED (engine.community): 200 listeners in four groups, marked as such everywhere.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.audio import Clip
from engine.errors import EngineError
from engine.library import Library

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DEMO_LISTENERS = 200
DEMO_SEED = 0

Analyse = Callable[[Clip], tuple[dict[str, float], dict[str, float]]]  # clip -> (moods, genres)


@dataclass(frozen=True)
class DemoPiece:
    """A piece of the demo library: bundled audio or a shipped MIDI excerpt."""

    title: str
    source: str  # what the library shows as its source
    path: Path  # audio or MIDI file

    def clip(self) -> Clip:
        """Its audio (MIDI is rendered).

        Raises:
            InvalidAudio, InvalidMidi, RenderingUnavailable: when it cannot be read or rendered.
        """
        from engine.compare import load_music

        return load_music(self.path, name=self.path.name)


def demo_pieces() -> list[DemoPiece]:
    """The demo library's pieces, in a fixed order."""
    from engine.generate import heldout_pieces

    pieces = []
    index = EXAMPLES / "index.json"
    if index.is_file():
        for entry in json.loads(index.read_text(encoding="utf-8")):
            pieces.append(
                DemoPiece(entry["title"], "demo: bundled example", EXAMPLES / entry["file"])
            )
    for piece in heldout_pieces():
        pieces.append(
            DemoPiece(
                f"{piece.title} ({piece.style})",
                f"demo: {piece.source}, {piece.licence}",
                piece.path,
            )
        )
    return [p for p in pieces if p.path.is_file()]


def has_demo_community(library: Library) -> bool:
    """True once the simulated community has been stored."""
    return any(listener.simulated for listener in library.listeners())


def build_demo(
    library: Library,
    analyse: Analyse,
    *,
    progress: Callable[[float, str], None] | None = None,
    listeners: int = DEMO_LISTENERS,
    seed: int = DEMO_SEED,
) -> dict[str, int]:
    """Add the demo pieces (analysed) to the library and a simulated community over them.

    Pieces that cannot be rendered here are skipped (and counted); the rest go on. Building
    again adds nothing twice.

    Args:
        library: where to store it.
        analyse: clip -> (crowd mood probabilities, genre probabilities).
        progress: called with (fraction done, what is being done).
        listeners: size of the simulated community.
        seed: the same seed gives the same community.

    Returns:
        {"tracks": added, "skipped": pieces that failed, "listeners": simulated listeners}.
    """
    from engine.community import simulate
    from engine.mood import MOOD_TAGS

    pieces = demo_pieces()
    added = skipped = 0
    for i, piece in enumerate(pieces):
        if progress is not None:
            progress(i / (len(pieces) + 1), f"Analysing {piece.title}")
        if library.has_track(hashlib.sha256(piece.path.read_bytes()).hexdigest()):
            continue
        try:
            clip = piece.clip()
        except EngineError:
            skipped += 1
            continue
        moods, genres = analyse(clip)
        _, new = library.add_clip(
            clip, title=piece.title, source=piece.source, moods=moods, genres=genres
        )
        added += new
    result = {"tracks": added, "skipped": skipped, "listeners": 0}
    if not has_demo_community(library):
        if progress is not None:
            progress(len(pieces) / (len(pieces) + 1), "Simulating the community")
        moods = library.track_moods()
        base = {t: [m.get(tag, 0.0) for tag in MOOD_TAGS] for t, m in moods.items()}
        if base:
            community = simulate(base, MOOD_TAGS, listeners=listeners, seed=seed)
            with tempfile.TemporaryDirectory() as folder:
                library.import_community(community.write_csv(folder), tags=MOOD_TAGS)
            result["listeners"] = len(community.listeners)
    if progress is not None:
        progress(1.0, "Done")
    return result
