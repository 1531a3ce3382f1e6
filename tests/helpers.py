"""Helpers shared by test modules: the CLI runner, small MIDI pieces, tiny models."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pretty_midi
import pytest
import torch

from engine import synth
from engine.errors import RenderingUnavailable
from engine.genre import GENRES
from engine.models.encoder import EncoderConfig, StudioEncoder
from engine.models.retrieval import RetrievalConfig, RetrievalHead
from engine.mood import MOOD_TAGS, QUADRANTS
from engine.train.engravers import LILYPOND, MUSESCORE

ROOT = Path(__file__).resolve().parents[1]
TINY_HEAD_DIM = 8  # embedding size of save_tiny_head's search head
TINY_MOOD = EncoderConfig(
    trunk="cnn",
    cnn_width=4,
    embedding_dim=16,
    trunk_heads=(("mood", len(MOOD_TAGS)), ("quadrant", len(QUADRANTS))),
)
MOOD_LABELS = {"genre": list(GENRES), "mood": list(MOOD_TAGS), "quadrant": list(QUADRANTS)}


def run_engine(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m engine ARGS` from the project root, with CI=1 as on the CI machine.

    CI=1 matters: pyfluidsynth prints to stdout on import when it is set, and that line must
    not reach the CLI's JSON.
    """
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "CI": "1", **(env or {})},
        timeout=300,
    )


def wait_for_exit(pid: int) -> None:
    """Wait until the child process `pid` has ended.

    The engine does not keep the Popen of a background build; when that object is collected after
    its child has ended, it reaps the child itself, and waitpid then finds no child.
    """
    with contextlib.suppress(ChildProcessError):  # already reaped: it has ended
        os.waitpid(pid, 0)


def _fluidsynth_usable() -> bool:
    try:
        synth._import_fluidsynth()
        synth.default_soundfont()
    except RenderingUnavailable:
        return False
    return True


needs_fluidsynth = pytest.mark.skipif(
    not _fluidsynth_usable(), reason="FluidSynth or a General MIDI soundfont is not installed"
)
needs_musescore = pytest.mark.skipif(shutil.which(MUSESCORE) is None,
                                     reason="MuseScore 3 not installed (make setup as root)")
needs_lilypond = pytest.mark.skipif(shutil.which(LILYPOND) is None,
                                    reason="LilyPond not installed (make setup as root)")


def arpeggio_piece(pitches: tuple[int, ...] = (60, 64, 67, 72)) -> pretty_midi.PrettyMIDI:
    """Two seconds: an arpeggio on piano (C major by default) over a kick and a snare hit."""
    score = pretty_midi.PrettyMIDI(initial_tempo=120)
    piano = pretty_midi.Instrument(program=0, name="piano")
    for i, pitch in enumerate(pitches):
        piano.notes.append(
            pretty_midi.Note(velocity=90, pitch=pitch, start=0.5 * i, end=0.5 * i + 0.45)
        )
    drums = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
    drums.notes.append(pretty_midi.Note(velocity=110, pitch=36, start=0.0, end=0.1))
    drums.notes.append(pretty_midi.Note(velocity=100, pitch=38, start=1.0, end=1.1))
    score.instruments.extend([piano, drums])
    return score


def midi_bytes(score: pretty_midi.PrettyMIDI) -> bytes:
    """A PrettyMIDI as Standard MIDI File bytes."""
    buffer = io.BytesIO()
    score.write(buffer)
    return buffer.getvalue()


def save_tiny_encoder(path: Path, *, seed: int = 0) -> Path:
    """A tiny randomly initialised studio encoder with a genre head, saved at `path`."""
    torch.manual_seed(seed)
    StudioEncoder(EncoderConfig(trunk="cnn", cnn_width=4, embedding_dim=16)).save(
        path, labels={"genre": list(GENRES)}, metrics={}
    )
    return path


def save_tiny_mood_encoder(path: Path) -> Path:
    """A tiny randomly initialised studio encoder with genre and mood heads, saved at `path`."""
    torch.manual_seed(0)
    StudioEncoder(TINY_MOOD).save(path, labels=MOOD_LABELS, metrics={})
    return path


def save_tiny_head(path: Path, *, input_dim: int = 16) -> Path:
    """A tiny randomly initialised search head for the tiny encoder's 16-d embeddings."""
    torch.manual_seed(0)
    config = RetrievalConfig(input_dim=input_dim, hidden_dim=12, embedding_dim=TINY_HEAD_DIM)
    RetrievalHead(config).save(path, encoder="tiny.pt", metrics={"note": "test"})
    return path
