"""ui.charts.piano_roll: drums are named by the General MIDI drum map."""

from __future__ import annotations

import pretty_midi

from engine import midi
from ui import charts


def beat(*, with_melody: bool) -> pretty_midi.PrettyMIDI:
    """Kick and closed hi-hat on four beats (plus one off-map hit), and a flute when asked."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    for step, pitch in enumerate([36, 42, 36, 20]):
        drums.notes.append(pretty_midi.Note(100, pitch, step * 0.5, step * 0.5 + 0.1))
    pm.instruments.append(drums)
    if with_melody:
        flute = pretty_midi.Instrument(program=73)
        flute.notes.append(pretty_midi.Note(90, 72, 0.0, 1.0))
        pm.instruments.append(flute)
    return pm


def test_a_beat_alone_has_a_row_per_drum_by_name() -> None:
    figure = charts.piano_roll(midi.piano_roll(beat(with_melody=False)))
    assert figure.layout.yaxis.tickvals == (20, 36, 42)
    assert figure.layout.yaxis.ticktext == ("drum 20", "Bass Drum 1", "Closed Hi Hat")
    (trace,) = figure.data
    assert list(trace.text) == ["Bass Drum 1", "Closed Hi Hat", "Bass Drum 1", "drum 20"]
    assert "%{text}" in trace.hovertemplate


def test_drums_under_a_melody_keep_the_octave_rows() -> None:
    figure = charts.piano_roll(midi.piano_roll(beat(with_melody=True)))
    assert figure.layout.yaxis.ticktext[:2] == ("C1", "C2")
    drums = next(t for t in figure.data if t.name == "Drums")
    assert "Closed Hi Hat" in drums.text


def test_a_score_page_outlines_staves_and_marks_unsure_symbols() -> None:
    import numpy as np

    from ui.charts import score_page

    page = np.full((1500, 2400), 255, np.uint8)
    staves = [(100, 200, 2200, 260, 0, "S1.1"), (100, 400, 2200, 460, 1, "S2.1")]
    figure = score_page(page, staves, [(500.0, 230.0, "C#5: 41% sure")], max_width=1000)
    kinds = [trace.type for trace in figure.data]
    assert kinds == ["image", "scatter"]
    assert figure.data[0].dx == 3  # shrunk to at most 1000 pixels wide: every third pixel
    assert len(figure.layout.shapes) == 2
    assert figure.layout.shapes[0].line.color != figure.layout.shapes[1].line.color
    assert list(figure.data[1].hovertext) == ["C#5: 41% sure"]
