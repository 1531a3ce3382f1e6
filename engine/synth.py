"""FluidSynth rendering: MIDI (a PrettyMIDI, a path or bytes) -> mono float32 audio.

One synthesizer is kept per (soundfont, rate) and reused across calls: loading a General MIDI
soundfont takes seconds, rendering a minute of music a fraction of that. FluidSynth itself is
imported only when a render is asked for, so `import engine.synth` works on machines without it.
"""

from __future__ import annotations

import io
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pretty_midi

from engine.audio import SAMPLE_RATE, SILENCE_PEAK
from engine.errors import InvalidMidi, RenderingUnavailable

MidiSource = pretty_midi.PrettyMIDI | str | Path | bytes

INSTALL_HINT = "apt install libfluidsynth3 fluid-soundfont-gm"
SOUNDFONT_ENV = "MUSIC_STUDIO_SOUNDFONT"  # a soundfont path that overrides the search
PEAK = 0.9  # renders are peak-normalised to this amplitude
TAIL_SECONDS = 1.0  # rendered after the last note so releases and reverb ring out
MAX_RENDER_SECONDS = 1200.0  # longer MIDI is refused: 20 minutes of audio is plenty
RENDER_RATE = 44_100  # FluidSynth runs at this rate at least; lower rates are resampled after,
# because its sample interpolation has no anti-alias filter and a 22,050 Hz render aliases
BLOCK_FRAMES = 65_536  # largest block asked of FluidSynth at once
FLUID_BLOCK = 64  # FluidSynth applies events at the start of its next block of this many frames
DRUM_CHANNEL = 9  # MIDI channel 10, counted from zero
DRUM_BANK = 128  # the percussion bank of a General MIDI soundfont
CHANNELS = 256  # synthesizer channels: one per instrument, so parts never share settings

# Best first: FluidR3 is the fullest GM set, MuseScore General the most modern, TimGM6mb the
# smallest (pretty_midi ships a copy, so there is always one when pretty_midi is installed).
_SOUNDFONT_CANDIDATES: tuple[Path, ...] = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/soundfonts/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf3/MuseScore_General.sf3"),
    Path("/usr/share/soundfonts/MuseScore_General.sf3"),
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
    Path(pretty_midi.__file__).parent / "TimGM6mb.sf2",
)


@dataclass(frozen=True)
class _Event:
    """One timed MIDI event on a synthesizer channel."""

    time: float  # seconds from the start
    order: int  # tie-break at equal times: controls, then note-offs, then note-ons
    kind: str  # "on", "off", "bend" or "cc"
    channel: int  # synthesizer channel
    a: int = 0  # pitch, bend value or controller number
    b: int = 0  # velocity or controller value


class _Synthesizer:
    """One loaded FluidSynth instance and the lock that serialises renders on it."""

    def __init__(self, soundfont: Path, rate: int) -> None:
        fluidsynth = _import_fluidsynth()
        self.rate = rate
        self.lock = threading.Lock()
        self.frames = 0  # frames rendered so far: FluidSynth's block phase
        self.synth = fluidsynth.Synth(gain=0.2, samplerate=float(rate), channels=CHANNELS)
        self.synth.setting("synth.polyphony", 1024)
        self.sfid = self.synth.sfload(str(soundfont))
        if self.sfid < 0:
            self.synth.delete()
            raise RenderingUnavailable(
                f"FluidSynth could not load the soundfont {soundfont}. Install a General MIDI "
                f"soundfont: {INSTALL_HINT}."
            )
        self._write_float = _float_writer(fluidsynth)

    def samples(self, frames: int) -> np.ndarray:
        """Render `frames` stereo frames; returns float32 of shape (frames, 2)."""
        out = np.empty((frames, 2), dtype=np.float32)
        done = 0
        while done < frames:
            n = min(BLOCK_FRAMES, frames - done)
            if self._write_float is not None:
                block = np.zeros((n, 2), dtype=np.float32)
                address = block.ctypes.data
                self._write_float(self.synth.synth, n, address, 0, 2, address, 1, 2)
            else:  # older bindings: 16-bit output through get_samples
                block = self.synth.get_samples(n).reshape(-1, 2).astype(np.float32) / 32768.0
            out[done : done + n] = block
            done += n
        self.frames += frames
        return out

    def reset(self) -> None:
        """Silence every note, reset programs and controllers, and flush the reverb tail."""
        self.synth.system_reset()
        # End on a whole FluidSynth block, so the next render's events land on the same
        # sample positions within a block. Renders of the same MIDI still differ slightly (the
        # chorus and reverb keep running state), so stored renders are keyed by the MIDI bytes.
        flush = self.rate // 2
        self.samples(flush + (-(self.frames + flush)) % FLUID_BLOCK)


_synthesizers: dict[tuple[str, int], _Synthesizer] = {}
_synthesizers_lock = threading.Lock()


def _import_fluidsynth() -> Any:
    try:
        import fluidsynth
    except (ImportError, OSError) as err:
        raise RenderingUnavailable(
            f"MIDI cannot be rendered to audio here: the FluidSynth library is missing ({err}). "
            f"Install it: {INSTALL_HINT} (and `pip install pyfluidsynth`)."
        ) from None
    return fluidsynth


def _float_writer(fluidsynth: Any) -> Any:
    """fluid_synth_write_float through the bindings' ctypes helper, or None if absent."""
    import ctypes

    cfunc = getattr(fluidsynth, "cfunc", None)
    if cfunc is None:
        return None
    return cfunc(
        "fluid_synth_write_float",
        ctypes.c_int,
        ("synth", ctypes.c_void_p, 1),
        ("len", ctypes.c_int, 1),
        ("lout", ctypes.c_void_p, 1),
        ("loff", ctypes.c_int, 1),
        ("lincr", ctypes.c_int, 1),
        ("rout", ctypes.c_void_p, 1),
        ("roff", ctypes.c_int, 1),
        ("rincr", ctypes.c_int, 1),
    )


def available_soundfonts() -> list[Path]:
    """General MIDI soundfonts installed on this machine, best first.

    Returns:
        Existing soundfont files (the `MUSIC_STUDIO_SOUNDFONT` path first when set); one entry
        per soundfont even when the same font is installed twice.
    """
    candidates = list(_SOUNDFONT_CANDIDATES)
    if override := os.environ.get(SOUNDFONT_ENV):
        candidates.insert(0, Path(override).expanduser())
    found: list[Path] = []
    names: set[str] = set()
    for path in candidates:
        if path.is_file() and path.name.lower() not in names:
            found.append(path)
            names.add(path.name.lower())
    return found


def default_soundfont() -> Path:
    """The best General MIDI soundfont installed.

    Raises:
        RenderingUnavailable: when no soundfont is installed.
    """
    fonts = available_soundfonts()
    if not fonts:
        raise RenderingUnavailable(
            f"MIDI cannot be rendered to audio here: no General MIDI soundfont is installed. "
            f"Install one: {INSTALL_HINT}."
        )
    return fonts[0]


def _synthesizer(soundfont: Path, rate: int) -> _Synthesizer:
    key = (str(soundfont.resolve()), rate)
    with _synthesizers_lock:
        synth = _synthesizers.get(key)
        if synth is None:
            synth = _synthesizers[key] = _Synthesizer(soundfont, rate)
        return synth


def read_midi(midi: MidiSource, *, name: str | None = None) -> pretty_midi.PrettyMIDI:
    """Parse MIDI given as a PrettyMIDI, a path or bytes.

    Args:
        midi: the MIDI.
        name: what to call it in messages (default: its file name, or "The MIDI data").

    Raises:
        InvalidMidi: when the file is missing or the data is not readable MIDI.
    """
    if isinstance(midi, pretty_midi.PrettyMIDI):
        return midi
    if isinstance(midi, bytes | bytearray | memoryview):
        data, name = bytes(midi), name or "The MIDI data"
    else:
        path = Path(midi)
        if not path.is_file():
            raise InvalidMidi(f"{path}: no such MIDI file.")
        data, name = path.read_bytes(), name or path.name
    if not data:
        raise InvalidMidi(f"{name} is empty (0 bytes).")
    try:
        return pretty_midi.PrettyMIDI(io.BytesIO(data))
    except Exception as err:  # mido and pretty_midi raise many types for bad files
        raise InvalidMidi(
            f"{name} is not a MIDI file the studio can read ({type(err).__name__}: {err}). "
            "Export it again as a Standard MIDI File (.mid)."
        ) from None


def _channels(midi: pretty_midi.PrettyMIDI) -> list[int]:
    """A synthesizer channel per instrument: the first drum part on channel 10, the rest apart."""
    channels: list[int] = []
    free = (c for c in range(CHANNELS) if c != DRUM_CHANNEL)
    drums_placed = False
    for instrument in midi.instruments:
        if instrument.is_drum and not drums_placed:
            channels.append(DRUM_CHANNEL)
            drums_placed = True
        else:
            # Past the last channel, parts share: rare enough not to matter.
            channels.append(next(free, CHANNELS - 1))
    return channels


def _events(midi: pretty_midi.PrettyMIDI) -> list[_Event]:
    """Flatten the instruments into timed events, one synthesizer channel per instrument."""
    events: list[_Event] = []
    for instrument, channel in zip(midi.instruments, _channels(midi), strict=True):
        for cc in instrument.control_changes:
            events.append(_Event(cc.time, 0, "cc", channel, cc.number, cc.value))
        for bend in instrument.pitch_bends:
            events.append(_Event(bend.time, 0, "bend", channel, bend.pitch))
        for note in instrument.notes:
            events.append(_Event(note.start, 2, "on", channel, note.pitch, note.velocity))
            events.append(_Event(note.end, 1, "off", channel, note.pitch))
    events.sort(key=lambda e: (e.time, e.order))
    return events


def _select_programs(synth: _Synthesizer, midi: pretty_midi.PrettyMIDI) -> None:
    for instrument, channel in zip(midi.instruments, _channels(midi), strict=True):
        if instrument.is_drum:
            if synth.synth.program_select(channel, synth.sfid, DRUM_BANK, instrument.program) < 0:
                synth.synth.program_select(channel, synth.sfid, DRUM_BANK, 0)
        elif synth.synth.program_select(channel, synth.sfid, 0, instrument.program) < 0:
            synth.synth.program_select(channel, synth.sfid, 0, 0)


def render_midi(
    midi: MidiSource,
    *,
    soundfont: str | Path | None = None,
    sample_rate: int = SAMPLE_RATE,
    name: str | None = None,
) -> np.ndarray:
    """Render MIDI to mono audio with FluidSynth.

    Args:
        midi: a PrettyMIDI, a path to a .mid file, or its bytes.
        soundfont: a .sf2/.sf3 file; default: the best General MIDI soundfont installed.
        sample_rate: output rate in Hz.
        name: what to call the MIDI in messages (default: its file name).

    Returns:
        Mono float32 samples, peak-normalised to PEAK unless silent; the last note's end plus
        TAIL_SECONDS long.

    Raises:
        InvalidMidi: for unreadable MIDI, MIDI with no notes, or MIDI longer than
            MAX_RENDER_SECONDS.
        RenderingUnavailable: when FluidSynth or a soundfont is missing.
    """
    score = read_midi(midi, name=name)
    if not any(instrument.notes for instrument in score.instruments):
        raise InvalidMidi(f"{name or 'The MIDI'} holds no notes: there is nothing to render.")
    end = max(note.end for instrument in score.instruments for note in instrument.notes)
    if end > MAX_RENDER_SECONDS:
        raise InvalidMidi(
            f"The MIDI lasts {end / 60:.0f} minutes; at most {MAX_RENDER_SECONDS / 60:.0f} "
            "minutes can be rendered."
        )
    font = Path(soundfont) if soundfont is not None else default_soundfont()
    if not font.is_file():
        raise RenderingUnavailable(f"{font}: no such soundfont. Install one: {INSTALL_HINT}.")
    rate = max(sample_rate, RENDER_RATE)
    synth = _synthesizer(font, rate)
    total = int(round((end + TAIL_SECONDS) * rate))
    events = _events(score)
    with synth.lock:
        try:
            stereo = _play(synth, score, events, total)
        finally:
            synth.reset()
    mono = stereo.mean(axis=1)
    if rate != sample_rate:
        import soxr

        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    peak = float(np.abs(mono).max(initial=0.0))
    if peak >= SILENCE_PEAK:
        mono *= PEAK / peak
    return mono


def _play(
    synth: _Synthesizer, score: pretty_midi.PrettyMIDI, events: list[_Event], total: int
) -> np.ndarray:
    """Send the events in time order, rendering the audio between them."""
    _select_programs(synth, score)
    fs = synth.synth
    out = np.zeros((total, 2), dtype=np.float32)
    position = 0
    for event in events:
        at = min(total, int(round(event.time * synth.rate)))
        if at > position:
            out[position:at] = synth.samples(at - position)
            position = at
        if event.kind == "on":
            fs.noteon(event.channel, event.a, event.b)
        elif event.kind == "off":
            fs.noteoff(event.channel, event.a)
        elif event.kind == "bend":
            fs.pitch_bend(event.channel, event.a)
        else:
            fs.cc(event.channel, event.a, event.b)
    if total > position:
        out[position:] = synth.samples(total - position)
    return out
