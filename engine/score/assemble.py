"""Staves read -> one music21 score: each part's staves joined across systems and pages, the
restated clefs and keys dropped, and MusicXML and MIDI written from it."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import music21

from engine.errors import InvalidScore
from engine.score.encoding import to_measures, token_kind

HEADER_KINDS = ("clef", "key", "time")


def join_staves(staves: Sequence[Sequence[str]]) -> list[str]:
    """One part's tokens from its staves in reading order, without the clef, key and time
    signature every system restates (only changes are kept)."""
    joined: list[str] = []
    state: dict[str, str] = {}
    for tokens in staves:
        header = True
        for token in tokens:
            kind = token_kind(token)
            if header and kind in HEADER_KINDS:
                if state.get(kind) != token:
                    joined.append(token)
                    state[kind] = token
                continue
            header = False
            if kind in HEADER_KINDS:
                state[kind] = token
            joined.append(token)
    return joined


def build_score(parts: Sequence[Sequence[str]], *, title: str = "") -> music21.stream.Score:
    """A music21 score with one part per token sequence (see `join_staves`)."""
    score = music21.stream.Score()
    if title:
        score.insert(0, music21.metadata.Metadata(title=title))
    for index, tokens in enumerate(parts):
        part = music21.stream.Part(id=f"P{index + 1}")
        part.partName = f"Staff {index + 1}" if len(parts) > 1 else "Music"
        measures = to_measures(tokens) or [music21.stream.Measure([music21.note.Rest(4.0)])]
        for number, measure in enumerate(measures, start=1):
            measure.number = number
            part.append(measure)
        score.insert(0, part)
    return score


def musicxml_bytes(score: music21.stream.Score) -> bytes:
    """The score as MusicXML (uncompressed).

    Raises:
        InvalidScore: when music21 cannot write what was read.
    """
    try:
        return music21.musicxml.m21ToXml.GeneralObjectExporter(score).parse()
    except music21.exceptions21.Music21Exception as err:
        raise InvalidScore(f"The score as read cannot be written as MusicXML ({err}).") from None


def midi_bytes(score: music21.stream.Score) -> bytes:
    """The score as a standard MIDI file; repeats are played out when they pair up.

    Raises:
        InvalidScore: when music21 cannot write what was read.
    """
    try:
        return music21.midi.translate.streamToMidiFile(score).writestr()
    except music21.exceptions21.Music21Exception:
        pass  # unmatched repeat signs, most often: play it as written
    flat = copy.deepcopy(score)
    for barline in list(flat.recurse().getElementsByClass(music21.bar.Repeat)):
        barline.activeSite.remove(barline)
    try:
        return music21.midi.translate.streamToMidiFile(flat).writestr()
    except music21.exceptions21.Music21Exception as err:
        raise InvalidScore(f"The score as read cannot be written as MIDI ({err}).") from None


def count_notes(score: music21.stream.Score) -> int:
    """Sounding notes in the score (each note of a chord counts)."""
    return sum(len(n.pitches) for n in score.recurse().notes)


def count_measures(score: music21.stream.Score) -> int:
    """Bars of the longest part."""
    return max((len(p.getElementsByClass("Measure")) for p in score.parts), default=0)
