"""Render the studio's bundled example clips from public-domain scores in the music21 corpus.

    python -m engine.train.make_examples [--out examples]

Each example is a score from the music21 corpus (compositions in the public domain), voiced
with General MIDI instruments, rendered with FluidSynth (engine.synth.render_midi) and written
as OGG Vorbis, with examples/index.json (titles for the app) and examples/README.md (sources
and licences). Nothing is downloaded: music21 ships its corpus.
"""

from __future__ import annotations

import argparse
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf
from tqdm import tqdm

from engine.synth import default_soundfont, render_midi

OUTPUT_RATE = 44_100  # Hz: examples are listened to, so they keep the full band
MAX_SECONDS = 30.0  # examples are cut to this length...
FADE_SECONDS = 2.0  # ...with a fade-out this long when cut
VORBIS_QUALITY = 0.5  # libsndfile's Vorbis quality (0..1); ~100 kbit/s mono
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ExampleScore:
    """One example: which score, how it is voiced, what it is called."""

    file: str  # output file name in the examples folder
    title: str  # what the app shows
    corpus_path: str  # path in the music21 corpus
    number: int | None  # tune number in a multi-tune ABC file, else None
    programs: tuple[int, ...]  # General MIDI program per part (the last repeats)
    quarter_bpm: float  # tempo in quarter notes per minute
    description: str  # one line for the app and the README
    chords: bool = False  # realise the lead sheet's chord symbols as accompaniment


EXAMPLES: tuple[ExampleScore, ...] = (
    ExampleScore(
        file="bach-chorale-bwv66-6.ogg",
        title="Bach: chorale BWV 66.6 (strings)",
        corpus_path="bach/bwv66.6",
        number=None,
        programs=(48, 48, 48, 42),  # string ensemble; cello on the bass line
        quarter_bpm=84,
        description="A four-part chorale harmonisation by J. S. Bach (1685–1750).",
    ),
    ExampleScore(
        file="oneill-shandon-bells.ogg",
        title="O'Neill's: Shandon Bells (jig, fiddle)",
        corpus_path="oneills1850/0811-0899.abc",
        number=814,
        programs=(40,),  # fiddle
        quarter_bpm=165,  # dotted quarter = 110: a brisk jig
        description="An Irish jig from O'Neill's Music of Ireland (1903).",
    ),
    ExampleScore(
        file="foster-jeanie.ogg",
        title="Foster: Jeanie with the Light Brown Hair (song)",
        corpus_path="leadSheet/fosterBrownHair.mxl",
        number=None,
        programs=(73, 24, 32),  # flute melody, nylon guitar chords, acoustic bass
        quarter_bpm=92,
        description="A parlour song by Stephen Foster (1854), melody with guitar and bass.",
        chords=True,
    ),
)


def score_midi(example: ExampleScore) -> pretty_midi.PrettyMIDI:
    """The example's score as MIDI, voiced and at its tempo."""
    from music21 import corpus, harmony, stream, tempo
    from music21.chord import Chord
    from music21.midi.translate import streamToMidiFile
    from music21.note import Note

    parsed = corpus.parse(example.corpus_path, number=example.number)
    score = parsed if isinstance(parsed, stream.Score) else stream.Score([parsed])
    parts = [_played_through(part) for part in score.parts]
    if example.chords:
        parts.extend(_accompaniment(parts[0], harmony, Chord, Note, stream))
    out = stream.Score()
    for part in parts:
        # Only the notes: the score's own tempo marks and chord symbols are dropped (the
        # symbols are realised above when wanted, never sounded twice).
        flat = part.flatten().notesAndRests.stream()
        for symbol in list(flat.getElementsByClass(harmony.ChordSymbol)):
            flat.remove(symbol)
        flat.insert(0, tempo.MetronomeMark(number=example.quarter_bpm))
        out.insert(0, flat)
    data = streamToMidiFile(out).writestr()
    midi = pretty_midi.PrettyMIDI(io.BytesIO(data))
    for index, instrument in enumerate(midi.instruments):
        instrument.program = example.programs[min(index, len(example.programs) - 1)]
        instrument.is_drum = False
    return midi


def _played_through(part):
    """The part with its repeats written out, or as written when they cannot be expanded."""
    try:
        return part.expandRepeats()
    except Exception:  # music21 raises several types for irregular repeat marks
        return part


def _accompaniment(melody, harmony, Chord, Note, stream) -> list:  # noqa: N803 (music21 classes)
    """A chord part and a bass part from a lead sheet's chord symbols."""
    symbols = list(melody.flatten().getElementsByClass(harmony.ChordSymbol))
    end = melody.flatten().highestTime
    chords, bass = stream.Part(), stream.Part()
    for symbol, following in zip(symbols, [*symbols[1:], None], strict=True):
        start = symbol.getOffsetInHierarchy(melody)
        stop = following.getOffsetInHierarchy(melody) if following is not None else end
        if stop <= start or not symbol.pitches:
            continue
        # Strum on each beat so the accompaniment keeps time, a bass note on every other.
        beat = start
        while beat < stop:
            length = min(1.0, stop - beat)
            voiced = Chord([p.transpose(12) for p in symbol.pitches], quarterLength=length * 0.9)
            voiced.volume.velocity = 62
            chords.insert(beat, voiced)
            if (beat - start) % 2 == 0:
                root = Note(symbol.root().transpose(-12 if symbol.root().octave >= 3 else 0))
                root.quarterLength = min(2.0, stop - beat) * 0.9
                root.volume.velocity = 80
                bass.insert(beat, root)
            beat += 1.0
    return [chords, bass]


def render_example(example: ExampleScore) -> np.ndarray:
    """Render an example to mono float32 at OUTPUT_RATE, cut to MAX_SECONDS with a fade."""
    samples = render_midi(score_midi(example), sample_rate=OUTPUT_RATE)
    limit = int(MAX_SECONDS * OUTPUT_RATE)
    if len(samples) > limit:
        samples = samples[:limit].copy()
        fade = int(FADE_SECONDS * OUTPUT_RATE)
        samples[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32) ** 2
    return samples


def write_readme(out: Path, soundfont: Path) -> None:
    rows = "\n".join(
        f"| `{e.file}` | {e.title} | {e.description} | music21 corpus `{e.corpus_path}`"
        f"{f' (tune {e.number})' if e.number else ''} |"
        for e in EXAMPLES
    )
    (out / "README.md").write_text(
        f"""# Example clips

Short renders of public-domain compositions, bundled so a first-time visitor can try the
studio with one click (Home → "Classify an example clip", or Classify → Examples).

| File | Title | What it is | Score |
|---|---|---|---|
{rows}

## Licence

- **Compositions**: public domain: J. S. Bach (d. 1750), Stephen Foster (d. 1864), and a
  traditional Irish jig as printed in O'Neill's *Music of Ireland* (1903).
- **Scores**: encodings shipped in the [music21](https://github.com/cuthbertLab/music21)
  corpus (see its `corpus/license.txt`); the Foster lead sheet is marked "Public Domain", the
  O'Neill's tunes were transcribed to ABC by Norbert Paap.
- **Sound**: rendered with FluidSynth using the {soundfont.name} soundfont
  (FluidR3_GM is MIT-licensed).
- **These audio files**: dedicated to the public domain (CC0 1.0) by the Music Studio authors.

No clip here comes from a commercial recording or a research data set.

## Regenerate

```
python -m engine.train.make_examples --out examples
```

needs FluidSynth and a General MIDI soundfont (`apt install libfluidsynth3 fluid-soundfont-gm`).
Renders are {MAX_SECONDS:.0f} s at most, mono OGG Vorbis at {OUTPUT_RATE} Hz.
""",
        encoding="utf-8",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "examples", help="output folder")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    soundfont = default_soundfont()
    index = []
    for example in tqdm(EXAMPLES, desc="rendering examples", unit="clip"):
        samples = render_example(example)
        sf.write(
            out / example.file,
            samples,
            OUTPUT_RATE,
            format="OGG",
            subtype="VORBIS",
            compression_level=1.0 - VORBIS_QUALITY,
        )
        index.append(
            {"file": example.file, "title": example.title, "description": example.description}
        )
        tqdm.write(f"{example.file}: {len(samples) / OUTPUT_RATE:.1f} s")
    (out / "index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    write_readme(out, soundfont)


if __name__ == "__main__":
    main()
