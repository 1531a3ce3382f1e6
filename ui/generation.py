"""The session's generated pieces: kept across pages so Compare and Classify can use them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st

from engine.audio import encode_wav

if TYPE_CHECKING:
    from engine.generate import GenerationResult
    from engine.midi import PianoRoll

_PIECES = "generated_pieces"  # session_state key: tuple of GeneratedTrack, newest generation
_CHOSEN = "generated_chosen"  # session_state key: index of the piece sent to Compare
_REQUEST = "generate_request"  # session_state key: settings a page asks Generate to run


@dataclass(frozen=True)
class GeneratedTrack:
    """One generated piece, ready to play, draw, download and compare."""

    title: str  # e.g. "folk, seed 3"
    style: str  # the style it was generated in
    midi: bytes  # Standard MIDI File
    wav: bytes | None  # 16-bit WAV of the render; None when rendering is unavailable
    piano_roll: PianoRoll  # its notes, for drawing
    seed: int
    tempo: float  # bpm
    seconds: float  # length, prompt included
    prompt_seconds: float  # how much of the start is the continued prompt
    draws: int = 1  # more than 1: earlier draws replayed a training piece (engine.originality)

    @property
    def file_stem(self) -> str:
        """A file name without extension: "folk-seed3"."""
        return f"{self.style.replace(' ', '-')}-seed{self.seed}"


def keep_generation(result: GenerationResult) -> tuple[GeneratedTrack, ...]:
    """Store a generation's pieces in the session (replacing the previous generation)."""
    tracks = tuple(
        GeneratedTrack(
            title=f"{result.settings.style}, seed {piece.seed}",
            style=result.settings.style,
            midi=piece.midi,
            wav=None if piece.audio is None else encode_wav(piece.audio, piece.sample_rate),
            piano_roll=piece.piano_roll,
            seed=piece.seed,
            tempo=piece.tempo,
            seconds=piece.seconds,
            prompt_seconds=piece.prompt_seconds,
            draws=piece.draws,
        )
        for piece in result.pieces
    )
    st.session_state[_PIECES] = tracks
    st.session_state[_CHOSEN] = 0
    return tracks


def generated_tracks() -> tuple[GeneratedTrack, ...]:
    """The pieces of the session's latest generation (empty before the first)."""
    return st.session_state.get(_PIECES, ())


def choose_track(index: int) -> None:
    """Mark one of the latest pieces as the one to compare."""
    st.session_state[_CHOSEN] = index


def chosen_index() -> int:
    """Index of the piece marked for comparison among the latest ones (0 by default)."""
    return max(0, min(st.session_state.get(_CHOSEN, 0), len(generated_tracks()) - 1))


def chosen_track() -> GeneratedTrack | None:
    """The piece marked for comparison (the first of the latest generation by default)."""
    tracks = generated_tracks()
    return tracks[chosen_index()] if tracks else None


def request_generation(**settings: object) -> None:
    """Ask the Generate page to generate with these settings when it next runs (one click)."""
    st.session_state[_REQUEST] = settings


def take_request() -> dict | None:
    """The pending one-click request, removed from the session."""
    return st.session_state.pop(_REQUEST, None)
