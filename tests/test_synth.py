"""Tests of engine.synth: FluidSynth rendering of MIDI made here (no shared data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from engine import synth
from engine.errors import InvalidMidi, RenderingUnavailable
from tests.helpers import arpeggio_piece, midi_bytes, needs_fluidsynth

RATE = 22_050


@needs_fluidsynth
def test_renderarpeggio_piece() -> None:
    score = arpeggio_piece()
    audio = synth.render_midi(score, sample_rate=RATE)
    expected = score.get_end_time() + synth.TAIL_SECONDS
    assert audio.dtype == np.float32
    assert audio.ndim == 1
    assert abs(len(audio) / RATE - expected) < 0.05
    assert np.isfinite(audio).all()
    assert np.abs(audio).max() == pytest.approx(synth.PEAK, abs=1e-3)
    rms = float(np.sqrt(np.mean(audio[: int(2.0 * RATE)] ** 2)))
    assert 0.02 < rms < 0.6  # audible music, not noise at full scale


@needs_fluidsynth
def test_render_from_bytes_and_path_match_object(tmp_path: Path) -> None:
    score = arpeggio_piece()
    data = midi_bytes(score)
    path = tmp_path / "piece.mid"
    path.write_bytes(data)
    from_bytes = synth.render_midi(data)
    from_path = synth.render_midi(path)
    assert len(from_bytes) == len(from_path)
    # Reverb modulation carries over between renders, so allow a little difference.
    assert np.abs(from_bytes - from_path).mean() < 0.01


@needs_fluidsynth
def test_drums_sound_on_their_own() -> None:
    score = arpeggio_piece()
    score.instruments = [score.instruments[1]]  # drums only
    audio = synth.render_midi(score)
    assert np.abs(audio[: int(0.2 * RATE)]).max() > 0.1  # the kick at t=0


def test_bad_bytes_raise_invalid_midi() -> None:
    with pytest.raises(InvalidMidi):
        synth.render_midi(b"this is not a MIDI file at all")


def test_empty_bytes_and_missing_file_raise_invalid_midi(tmp_path: Path) -> None:
    with pytest.raises(InvalidMidi):
        synth.render_midi(b"")
    with pytest.raises(InvalidMidi):
        synth.render_midi(tmp_path / "missing.mid")


def test_midi_without_notes_raises_invalid_midi() -> None:
    score = pretty_midi.PrettyMIDI()
    score.instruments.append(pretty_midi.Instrument(program=0))
    with pytest.raises(InvalidMidi):
        synth.render_midi(score)
    with pytest.raises(InvalidMidi):
        synth.render_midi(midi_bytes(score))


def test_no_soundfont_raises_rendering_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synth, "available_soundfonts", lambda: [])
    with pytest.raises(RenderingUnavailable, match="apt install"):
        synth.default_soundfont()
    with pytest.raises(RenderingUnavailable, match="libfluidsynth3"):
        synth.render_midi(arpeggio_piece())


def test_missing_fluidsynth_raises_rendering_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_fluidsynth(name: str, *args: object, **kwargs: object) -> object:
        level = args[3] if len(args) > 3 else kwargs.get("level", 0)
        if name == "fluidsynth" and level == 0:  # pyfluidsynth, not pretty_midi.fluidsynth
            raise ImportError("Couldn't find the FluidSynth library.")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_fluidsynth)
    monkeypatch.setattr(synth, "_synthesizers", {})  # no synthesizer loaded yet
    with pytest.raises(RenderingUnavailable, match="apt install"):
        synth._import_fluidsynth()
    with pytest.raises(RenderingUnavailable, match="libfluidsynth3"):
        synth.render_midi(arpeggio_piece())


def test_soundfont_search_is_ordered_and_unique(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = tmp_path / "a" / "Best.sf2"
    second = tmp_path / "b" / "Best.sf2"  # the same font installed twice
    third = tmp_path / "c" / "Small.sf2"
    for path in (first, second, third):
        path.parent.mkdir()
        path.write_bytes(b"x")
    monkeypatch.delenv(synth.SOUNDFONT_ENV, raising=False)
    monkeypatch.setattr(
        synth, "_SOUNDFONT_CANDIDATES", (tmp_path / "none.sf2", first, second, third)
    )
    assert synth.available_soundfonts() == [first, third]
    assert synth.default_soundfont() == first
    monkeypatch.setenv(synth.SOUNDFONT_ENV, str(third))
    assert synth.default_soundfont() == third
