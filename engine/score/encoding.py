"""The reader's semantic encoding of a staff: music21 measures <-> a sequence of symbols.

A staff reads left to right as one token per symbol, in the musician's terms:

- ``clef:G2`` (sign and line; ``clef:G2-8`` is the tenor's octave treble clef), ``key:+3`` /
  ``key:-2`` / ``key:0`` (sharps or flats), ``time:3/4``, ``time:C``, ``time:C/``;
- a note is its sounding pitch (``C#5``, ``Bb3``) then its duration (``quarter``, ``eighth.``,
  ``16th^3`` for a triplet sixteenth); a chord stacks its pitches (low to high) before the one
  duration; ``rest`` then a duration is a rest, ``rest:measure`` a whole-bar rest; ``tie``
  after a duration ties it to the next note;
- ``|`` a barline, ``||`` a double barline, ``|]`` the final barline, ``|:`` and ``:|`` repeats.

At the start of every system a staff restates its clef and key (the key only when it has
sharps or flats), and its time signature when the system starts the piece or changes metre.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import music21

# Note values the encoding names, longest first, with their length in quarter notes.
DURATION_TYPES: dict[str, Fraction] = {
    "breve": Fraction(8),
    "whole": Fraction(4),
    "half": Fraction(2),
    "quarter": Fraction(1),
    "eighth": Fraction(1, 2),
    "16th": Fraction(1, 4),
    "32nd": Fraction(1, 8),
    "64th": Fraction(1, 16),
}
MAX_DOTS = 2
BARLINES = {
    "regular": "|",
    "double": "||",
    "final": "|]",
    "light-heavy": "|]",
    "light-light": "||",
}
REPEAT_START, REPEAT_END = "|:", ":|"
BARLINE_TOKENS = ("|", "||", "|]", REPEAT_START, REPEAT_END)
STEPS = "CDEFGAB"
ALTERS = {"bb": -2, "b": -1, "": 0, "#": 1, "##": 2}
LOWEST_OCTAVE, HIGHEST_OCTAVE = 0, 8
CLEFS = (
    "clef:G2", "clef:G1", "clef:G2-8", "clef:G2+8", "clef:F4", "clef:F3", "clef:F5",
    "clef:F4-8", "clef:C1", "clef:C2", "clef:C3", "clef:C4", "clef:C5",
)
TIMES = tuple(
    f"time:{n}/{d}" for d in (2, 4, 8, 16) for n in range(1, 13)
) + ("time:C", "time:C/")
KEYS = tuple(f"key:{k:+d}" if k else "key:0" for k in range(-7, 8))
PITCH = re.compile(r"^([A-G])(bb|b|##|#|)(-?\d)$")
DURATION = re.compile(r"^(breve|whole|half|quarter|eighth|16th|32nd|64th)(\.{0,2})(\^3)?$")


class NotEncodable(ValueError):
    """A measure holds something the encoding has no symbol for (several voices, quintuplets,
    microtones...); the training data skips such measures. Grace notes are left out of the
    tokens (they take no time in the bar), so the reader learns to pass over them."""


def vocabulary() -> list[str]:
    """Every token of the encoding, in a fixed order (index 0 is left for the CTC blank)."""
    durations = [
        f"{name}{'.' * dots}{suffix}"
        for name in DURATION_TYPES
        for dots in range(MAX_DOTS + 1)
        for suffix in ("", "^3")
    ]
    pitches = [
        f"{step}{accidental}{octave}"
        for octave in range(LOWEST_OCTAVE, HIGHEST_OCTAVE + 1)
        for step in STEPS
        for accidental in ALTERS
    ]
    return [
        *CLEFS, *KEYS, *TIMES, *BARLINE_TOKENS, "rest", "rest:measure", "tie",
        *durations, *pitches,
    ]


def token_kind(token: str) -> str:
    """What a token names: clef, key, time, barline, pitch, duration, rest or tie."""
    if token in ("rest", "rest:measure"):
        return "rest"
    if token == "tie":
        return "tie"
    if token in BARLINE_TOKENS:
        return "barline"
    prefix = token.split(":", 1)[0]
    if prefix in ("clef", "key", "time"):
        return prefix
    if PITCH.match(token):
        return "pitch"
    return "duration"


def clef_token(clef: music21.clef.Clef) -> str:
    """`clef:G2`, `clef:F4`, `clef:G2-8`... for a music21 clef.

    Raises:
        NotEncodable: for percussion and tablature clefs.
    """
    if clef.sign not in ("G", "F", "C") or clef.line is None:
        raise NotEncodable(f"clef {clef.sign}")
    octave = {0: "", -1: "-8", 1: "+8"}.get(clef.octaveChange)
    if octave is None:
        raise NotEncodable("two-octave clef")
    token = f"clef:{clef.sign}{clef.line}{octave}"
    if token not in CLEFS:
        raise NotEncodable(token)
    return token


def key_token(sharps: int) -> str:
    """`key:+3`, `key:-2` or `key:0`."""
    if not -7 <= sharps <= 7:
        raise NotEncodable(f"key with {sharps} sharps")
    return f"key:{sharps:+d}" if sharps else "key:0"


def time_token(time: music21.meter.TimeSignature) -> str:
    """`time:6/8`, or `time:C` / `time:C/` for common and cut time written as symbols."""
    if time.symbol == "common" and time.ratioString == "4/4":
        return "time:C"
    if time.symbol == "cut" and time.ratioString == "2/2":
        return "time:C/"
    token = f"time:{time.numerator}/{time.denominator}"
    if token not in TIMES:
        raise NotEncodable(token)
    return token


def pitch_token(pitch: music21.pitch.Pitch) -> str:
    """`C#5`, `Bb3`: a pitch as spelt, with its octave."""
    alter = int(pitch.alter) if pitch.accidental is not None else 0
    if pitch.alter != alter or alter not in ALTERS.values():
        raise NotEncodable(f"microtone {pitch}")
    accidental = {value: name for name, value in ALTERS.items()}[alter]
    if not LOWEST_OCTAVE <= pitch.octave <= HIGHEST_OCTAVE:
        raise NotEncodable(f"octave of {pitch}")
    return f"{pitch.step}{accidental}{pitch.octave}"


def duration_token(duration: music21.duration.Duration) -> str:
    """`quarter`, `eighth.`, `16th^3` (a triplet sixteenth)."""
    if duration.isGrace:
        raise NotEncodable("grace note")
    if duration.type not in DURATION_TYPES or duration.dots > MAX_DOTS:
        raise NotEncodable(f"duration {duration.type}")
    tuplets = duration.tuplets
    suffix = ""
    if tuplets:
        if len(tuplets) > 1 or (tuplets[0].numberNotesActual, tuplets[0].numberNotesNormal) != (
            3,
            2,
        ):
            raise NotEncodable("tuplet other than a triplet")
        suffix = "^3"
    return f"{duration.type}{'.' * duration.dots}{suffix}"


def _barline_token(barline: music21.bar.Barline | None) -> str:
    if barline is None:
        return "|"
    if isinstance(barline, music21.bar.Repeat):
        return REPEAT_END if barline.direction == "end" else "|"
    return BARLINES.get(barline.type, "|")


def _notes(measure: music21.stream.Measure) -> list[music21.base.Music21Object]:
    if any(len(voice.notesAndRests) for voice in measure.voices[1:]):
        raise NotEncodable("several voices in one staff")
    source = measure.voices[0] if measure.voices else measure
    return list(source.getElementsByClass(["GeneralNote", "Clef", "KeySignature",
                                           "TimeSignature"]))


def measure_tokens(
    measure: music21.stream.Measure, *, system_start: bool, bar_quarters: Fraction
) -> list[str]:
    """The tokens of one measure, its barline last.

    Args:
        measure: a measure of one staff (one voice; chords allowed).
        system_start: whether the measure opens a system (its clef, key and time signature
            are then in the system's header, not in the measure).
        bar_quarters: the bar's length under the time signature in force.

    Raises:
        NotEncodable: when the measure holds something the encoding cannot say.
    """
    tokens: list[str] = []
    left = measure.leftBarline
    if isinstance(left, music21.bar.Repeat) and left.direction == "start":
        tokens.append(REPEAT_START)
    elements = _notes(measure)
    sounding = [e for e in elements if isinstance(e, music21.note.GeneralNote)]
    # A bar of silence is drawn as a whole rest in any metre.
    whole_bar_rest = (
        len(sounding) == 1
        and isinstance(sounding[0], music21.note.Rest)
        and (getattr(sounding[0], "fullMeasure", False) in (True, "always")
             or Fraction(sounding[0].quarterLength) == bar_quarters)
    )
    for element in elements:
        if isinstance(element, music21.clef.Clef | music21.key.KeySignature |
                      music21.meter.TimeSignature):
            if system_start and element.offset == 0:
                continue
            if isinstance(element, music21.clef.Clef):
                tokens.append(clef_token(element))
            elif isinstance(element, music21.key.KeySignature):
                tokens.append(key_token(element.sharps))
            else:
                tokens.append(time_token(element))
            continue
        if element.duration.isGrace:
            continue
        if isinstance(element, music21.note.Rest):
            if whole_bar_rest:
                tokens.append("rest:measure")
                continue
            tokens += ["rest", duration_token(element.duration)]
            continue
        if isinstance(element, music21.chord.Chord):
            pitches = sorted(element.pitches, key=lambda p: p.ps)
            tied = any(n.tie is not None and n.tie.type in ("start", "continue")
                       for n in element.notes)
        elif isinstance(element, music21.note.Note):
            pitches = [element.pitch]
            tied = element.tie is not None and element.tie.type in ("start", "continue")
        else:
            raise NotEncodable(type(element).__name__)
        tokens += [pitch_token(p) for p in dict.fromkeys(pitches)]
        tokens.append(duration_token(element.duration))
        if tied:
            tokens.append("tie")
    tokens.append(_barline_token(measure.rightBarline))
    return tokens


@dataclass(frozen=True)
class StaffContext:
    """What is in force where a system starts: the header the staff restates."""

    clef: str  # clef token
    key: int  # sharps (+) or flats (-)
    time: str | None  # time token when the system shows it (piece start or a change)


def header_tokens(context: StaffContext) -> list[str]:
    """The tokens a staff shows at a system start: clef, key (if any), time (if shown)."""
    tokens = [context.clef]
    if context.key:
        tokens.append(key_token(context.key))
    if context.time:
        tokens.append(context.time)
    return tokens


def _duration(token: str) -> music21.duration.Duration:
    match = DURATION.match(token)
    assert match is not None
    name, dots, triplet = match.groups()
    duration = music21.duration.Duration(type=name, dots=len(dots))
    if triplet:
        duration.appendTuplet(music21.duration.Tuplet(3, 2))
    return duration


def to_measures(
    tokens: Sequence[str], *, bar_quarters: float = 4.0
) -> list[music21.stream.Measure]:
    """Decode a staff's tokens into music21 measures (clef, key and time included).

    Out-of-place tokens (a duration with no pitch before it, a tie with nothing to tie) are
    skipped, so any sequence the reader emits decodes to something playable.

    Args:
        tokens: one staff's symbols.
        bar_quarters: the bar length in force before the staff's first time signature.
    """
    measures: list[music21.stream.Measure] = []
    measure = music21.stream.Measure()
    pending: list[music21.pitch.Pitch] = []
    rest = False
    last_notes: list[music21.note.Note] = []
    quarters = bar_quarters

    def close(barline: str) -> None:
        nonlocal measure
        if barline == REPEAT_END:
            measure.rightBarline = music21.bar.Repeat(direction="end")
        elif barline == "||":
            measure.rightBarline = music21.bar.Barline("double")
        elif barline == "|]":
            measure.rightBarline = music21.bar.Barline("final")
        measures.append(measure)
        measure = music21.stream.Measure()

    for token in tokens:
        kind = token_kind(token)
        if kind == "pitch":
            match = PITCH.match(token)
            assert match is not None
            step, accidental, octave = match.groups()
            pitch = music21.pitch.Pitch(step=step, octave=int(octave))
            if accidental:
                pitch.accidental = music21.pitch.Accidental(ALTERS[accidental])
            pending.append(pitch)
            rest = False
        elif token == "rest":
            pending, rest = [], True
        elif token == "rest:measure":
            element = music21.note.Rest(quarterLength=quarters)
            element.fullMeasure = True
            measure.append(element)
            pending, rest, last_notes = [], False, []
        elif kind == "duration":
            if rest:
                measure.append(music21.note.Rest(duration=_duration(token)))
                last_notes = []
            elif pending:
                if len(pending) == 1:
                    element = music21.note.Note(pending[0], duration=_duration(token))
                    last_notes = [element]
                else:
                    element = music21.chord.Chord(pending, duration=_duration(token))
                    last_notes = list(element.notes)
                measure.append(element)
            pending, rest = [], False
        elif kind == "tie":
            for note in last_notes:
                note.tie = music21.tie.Tie("start")
            last_notes = []
        elif kind == "barline":
            if token == REPEAT_START:
                measure.leftBarline = music21.bar.Repeat(direction="start")
            else:
                close(token)
            pending, rest = [], False
        elif kind == "clef":
            measure.append(_clef(token))
        elif kind == "key":
            measure.append(music21.key.KeySignature(int(token.split(":")[1])))
        elif kind == "time":
            time = time_signature(token)
            quarters = time.barDuration.quarterLength
            measure.append(time)
    if len(measure.notesAndRests) or measure.getElementsByClass("Clef"):
        measures.append(measure)
    return measures


def _clef(token: str) -> music21.clef.Clef:
    body = token.split(":", 1)[1]
    sign, line, octave = body[0], int(body[1]), body[2:]
    clef = music21.clef.clefFromString(f"{sign}{line}", octaveShift={"": 0, "-8": -1,
                                                                    "+8": 1}[octave])
    return clef


def time_signature(token: str) -> music21.meter.TimeSignature:
    """The music21 time signature of a `time:` token."""
    body = token.split(":", 1)[1]
    if body == "C":
        time = music21.meter.TimeSignature("4/4")
        time.symbol = "common"
    elif body == "C/":
        time = music21.meter.TimeSignature("2/2")
        time.symbol = "cut"
    else:
        time = music21.meter.TimeSignature(body)
    return time


def token_quarters(token: str) -> Fraction:
    """The length of a duration token in quarter notes."""
    match = DURATION.match(token)
    if match is None:
        raise ValueError(f"{token!r} is not a duration")
    name, dots, triplet = match.groups()
    base = DURATION_TYPES[name]
    length = base * (2 - Fraction(1, 2 ** len(dots)))
    return length * Fraction(2, 3) if triplet else length


def uneven_bars(
    tokens: Sequence[str], *, bar_quarters: Fraction = Fraction(4), opens: bool = True,
    closes: bool = True,
) -> list[int]:
    """Bars (1-based, in this staff) whose notes and rests do not add up to the time signature:
    where a reading most likely missed or misread a symbol.

    Args:
        tokens: one staff's symbols.
        bar_quarters: the bar length in force where the staff starts.
        opens: the staff opens the piece (its first bar may be a short pickup).
        closes: the staff ends the piece (its last bar may complete the pickup).
    """
    bars: list[Fraction] = []
    length, quarters = Fraction(0), bar_quarters
    for token in tokens:
        kind = token_kind(token)
        if kind == "time":
            quarters = Fraction(time_signature(token).barDuration.quarterLength)
        elif kind == "duration":
            length += token_quarters(token)
        elif token == "rest:measure":
            length += quarters
        elif kind == "barline" and token != REPEAT_START:
            bars.append(length - quarters)
            length = Fraction(0)
    first = 1 if opens else 0
    last = len(bars) - 1 if closes else len(bars)
    return [index + 1 for index, off in enumerate(bars) if off and first <= index < last]


def split_kinds(tokens: Iterable[str], kinds: Sequence[str]) -> list[str]:
    """The tokens of the given kinds only, in order (e.g. pitches alone, durations alone)."""
    return [token for token in tokens if token_kind(token) in kinds]
