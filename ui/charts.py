"""Plotly figures of analysis results: pure functions, result in, figure out."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from itertools import pairwise

import numpy as np
import plotly.graph_objects as go
import pretty_midi
from PIL import Image

from engine.compare import PITCH_CLASS_NAMES, PitchClasses
from engine.genre import GenrePrediction, GenreSegment
from engine.midi import PianoRoll

ACCENT = "#6d4aff"  # the theme's primary colour (.streamlit/config.toml)
PROBABILITY_SCALE = [[0.0, "#f7f5ff"], [0.5, "#a58cff"], [1.0, "#3b1fb0"]]
# Magma-like, spelled out: plotly's own "Magma" starts at #000004, which Streamlit 1.67 draws pink.
SPECTROGRAM_SCALE = [
    [0.0, "#1b1035"],
    [0.25, "#4b1d7a"],
    [0.5, "#a3307e"],
    [0.75, "#f1605d"],
    [1.0, "#fcfdbf"],
]
DIFFERENCE_SCALE = [[0.0, "#2b6cb0"], [0.5, "#ffffff"], [1.0, "#c53030"]]  # B louder .. A louder
SIDE_COLOURS = (ACCENT, "#e8793a")  # the original, the compared piece
FREQUENCY_TICKS_HZ = (500, 1000, 2000, 4000, 8000)  # lower ones crowd: mel is linear below 1 kHz
_MARGIN = {"l": 10, "r": 10, "t": 30, "b": 10}


def genre_label(genre: str) -> str:
    """A genre as a musician writes it: "pop/rock" -> "Pop/Rock", "r&b" -> "R&B"."""
    return genre.title()


def genre_summary(prediction: GenrePrediction) -> str:
    """The runners-up and how often the genre changes, in a sentence or two."""
    ranked = sorted(prediction.genres, key=prediction.genres.get, reverse=True)
    words = []
    if len(ranked) > 1:
        runners_up = " · ".join(f"{genre_label(g)} {prediction.genres[g]:.0%}" for g in ranked[1:3])
        words.append(f"Then {runners_up}.")
    windows = len(prediction.segments)
    if windows > 1:
        changes = sum(a.top != b.top for a, b in pairwise(prediction.segments))
        words.append(
            f"Over {windows} windows the most likely genre changes {changes} "
            f"time{'s' if changes != 1 else ''}."
            if changes
            else f"Over {windows} windows the most likely genre stays the same."
        )
    return " ".join(words)


def genre_bars(genres: Mapping[str, float], *, top: int | None = None) -> go.Figure:
    """Horizontal bars of genre probabilities, most likely at the top.

    Args:
        genres: probability per genre name.
        top: show only this many genres (all when None).
    """
    ranked = sorted(genres.items(), key=lambda item: item[1], reverse=True)[:top]
    ranked.reverse()  # plotly draws the first bar at the bottom
    names = [genre_label(name) for name, _ in ranked]
    values = [float(p) for _, p in ranked]
    figure = go.Figure(
        go.Bar(
            x=values,
            y=names,
            orientation="h",
            marker_color=[
                ACCENT if i == len(values) - 1 else "#b7a6ff" for i in range(len(values))
            ],
            text=[f"{p:.0%}" for p in values],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.1%}<extra></extra>",
        )
    )
    figure.update_layout(
        title="Genre probabilities",
        xaxis={"range": [0, 1.12], "tickformat": ".0%", "title": None, "showgrid": True},
        yaxis={"title": None},
        height=max(260, 30 * len(values) + 80),
        margin=_MARGIN,
        showlegend=False,
    )
    return figure


def genre_timeline(segments: Sequence[GenreSegment], genres: Sequence[str]) -> go.Figure:
    """Heatmap of genre probability per window (genres down, time across).

    Args:
        segments: the windows of a GenrePrediction, in time order.
        genres: the genres to show, top to bottom.
    """
    z = np.array([[segment.genres.get(g, 0.0) for segment in segments] for g in genres])
    centres = [(segment.start + segment.end) / 2 for segment in segments]
    widths = [segment.end - segment.start for segment in segments]
    labels = [genre_label(g) for g in genres]
    custom = np.array([[[segment.start, segment.end] for segment in segments] for _ in genres])
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=centres,
            y=labels,
            customdata=custom,
            zmin=0.0,
            zmax=1.0,
            colorscale=PROBABILITY_SCALE,
            colorbar={"title": "p", "tickformat": ".0%", "thickness": 12},
            hovertemplate="%{y}, %{customdata[0]:.0f}–%{customdata[1]:.0f} s: %{z:.0%}"
            "<extra></extra>",
            xgap=1,
            ygap=1,
        )
    )
    # Mark each window's top genre so the eye can follow changes of genre.
    figure.add_trace(
        go.Scatter(
            x=centres,
            y=[genre_label(segment.top) for segment in segments],
            mode="markers",
            marker={
                "symbol": "circle",
                "size": 7,
                "color": "#ffffff",
                "line": {"width": 1.5, "color": "#1f1a33"},
            },
            hoverinfo="skip",
            showlegend=False,
        )
    )
    end = max((segment.end for segment in segments), default=0.0)
    figure.update_layout(
        title="Genre over time (white dot: most likely genre of each window)",
        xaxis={"title": "seconds", "range": [0, end] if widths else None},
        yaxis={
            "title": None,
            "autorange": "reversed",
            "categoryorder": "array",
            "categoryarray": labels,
        },
        height=max(300, 26 * len(labels) + 110),
        margin=_MARGIN,
    )
    return figure


def spectrogram(
    db: np.ndarray, seconds: np.ndarray, band_hz: np.ndarray, *, title: str = "Mel spectrogram"
) -> go.Figure:
    """Heatmap of a log-mel spectrogram, bands evenly spaced with their frequencies marked.

    Args:
        db: (mel bands, columns) in dB relative to the peak.
        seconds: start time of each column.
        band_hz: centre frequency of each band.
        title: the figure's title.
    """
    return _mel_heatmap(
        db,
        seconds,
        band_hz,
        title=title,
        colorscale=SPECTROGRAM_SCALE,
        zrange=(float(db.min(initial=-80.0)), 0.0),
        unit="dB",
    )


def spectrogram_difference(
    difference_db: np.ndarray, seconds: np.ndarray, band_hz: np.ndarray, *, title: str
) -> go.Figure:
    """Heatmap of A minus B in dB: red where A is louder, blue where B is, white where equal."""
    limit = max(float(np.percentile(np.abs(difference_db), 99)) if difference_db.size else 0, 1)
    return _mel_heatmap(
        difference_db,
        seconds,
        band_hz,
        title=title,
        colorscale=DIFFERENCE_SCALE,
        zrange=(-limit, limit),
        unit="dB",
    )


def _mel_heatmap(
    z: np.ndarray,
    seconds: np.ndarray,
    band_hz: np.ndarray,
    *,
    title: str,
    colorscale: list,
    zrange: tuple[float, float],
    unit: str,
) -> go.Figure:
    # Bands as categories: evenly spaced like the mel scale, hover shows each band's Hz.
    names = [f"{hz:.0f} Hz" for hz in band_hz]
    ticks = [t for t in FREQUENCY_TICKS_HZ if band_hz[0] <= t <= band_hz[-1]]
    tick_names = [names[int(np.abs(band_hz - t).argmin())] for t in ticks]
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=seconds,
            y=names,
            colorscale=colorscale,
            zmin=zrange[0],
            zmax=zrange[1],
            colorbar={"title": unit, "thickness": 12},
            hovertemplate=f"%{{x:.1f}} s, %{{y}}: %{{z:.0f}} {unit}<extra></extra>",
        )
    )
    figure.update_layout(
        title=title,
        xaxis={"title": "seconds"},
        yaxis={
            "title": None,
            "tickvals": tick_names,
            "ticktext": [f"{t // 1000} kHz" if t >= 1000 else f"{t} Hz" for t in ticks],
        },
        height=320,
        margin=_MARGIN,
    )
    return figure


def chromagram(chroma: np.ndarray, seconds: np.ndarray, *, title: str) -> go.Figure:
    """Heatmap of a chromagram (C at the bottom, time across) on a fixed 0..1 scale, so two
    chromagrams side by side share their colours.

    Args:
        chroma: (12, columns), each frame normalised to max 1.
        seconds: start time of each column.
        title: the figure's title.
    """
    figure = go.Figure(
        go.Heatmap(
            z=chroma,
            x=seconds,
            y=list(PITCH_CLASS_NAMES),
            colorscale=SPECTROGRAM_SCALE,
            zmin=0.0,
            zmax=1.0,
            colorbar={"title": "strength", "thickness": 12},
            hovertemplate="%{x:.1f} s, %{y}: %{z:.2f}<extra></extra>",
        )
    )
    figure.update_layout(
        title=title, xaxis={"title": "seconds"}, yaxis={"title": None}, height=280, margin=_MARGIN
    )
    return figure


def pitch_class_bars(sides: Sequence[tuple[str, PitchClasses]]) -> go.Figure:
    """Grouped bars of each piece's share per pitch class; the legend says where each comes
    from (MIDI notes or the audio's chroma).

    Args:
        sides: (name, pitch classes) of each piece, the original first.
    """
    figure = go.Figure()
    for (name, classes), colour in zip(sides, SIDE_COLOURS, strict=False):
        label = f"{name} (from {classes.source})"
        figure.add_trace(
            go.Bar(
                x=list(PITCH_CLASS_NAMES),
                y=classes.shares,
                name=label,
                marker_color=colour,
                hovertemplate="%{x}: %{y:.1%}<extra>" + label + "</extra>",
            )
        )
    figure.update_layout(
        title="Pitch-class histograms",
        barmode="group",
        xaxis={"title": None},
        yaxis={"title": None, "tickformat": ".0%"},
        height=320,
        margin=_MARGIN,
        legend={"orientation": "h", "y": -0.15},
    )
    return figure


def _drum_name(pitch: int) -> str:
    """The General MIDI drum at `pitch` ("Acoustic Snare"), or "drum N" off the drum map."""
    return pretty_midi.note_number_to_drum_name(int(pitch)) or f"drum {int(pitch)}"


def piano_roll(
    roll: PianoRoll, *, prompt_seconds: float = 0.0, title: str = "Piano roll"
) -> go.Figure:
    """Notes as bars (pitch up, time across), one colour per instrument; drums as ticks.

    Args:
        roll: the notes of a piece.
        prompt_seconds: shade the first seconds as the continued prompt (0: none).
        title: the figure's title.
    """
    figure = go.Figure()
    for program in np.unique(roll.program):
        mine = roll.program == program
        drum = bool(roll.is_drum[mine].any())
        name = "Drums" if drum else pretty_midi.program_to_instrument_name(int(program))
        start, end, pitch = roll.start[mine], roll.end[mine], roll.pitch[mine]
        if drum:
            trace = go.Scatter(
                x=start,
                y=pitch,
                mode="markers",
                name=name,
                text=[_drum_name(p) for p in pitch],
                marker={"symbol": "line-ns-open", "size": 8, "color": "#7a7a8c"},
                hovertemplate="%{x:.2f} s, %{text}<extra>Drums</extra>",
            )
        else:
            # One line per note, separated by gaps (None): thousands of notes in one trace.
            x = np.column_stack([start, end, np.full(len(start), np.nan)]).ravel()
            y = np.repeat(pitch.astype(np.float64), 3)
            y[2::3] = np.nan
            trace = go.Scatter(
                x=x,
                y=y,
                mode="lines",
                name=name,
                line={"width": 5},
                hovertemplate="%{x:.2f} s, pitch %{y}<extra>" + name + "</extra>",
            )
        figure.add_trace(trace)
    if prompt_seconds > 0:
        figure.add_vrect(
            x0=0,
            x1=prompt_seconds,
            fillcolor="#d9d2ff",
            opacity=0.35,
            line_width=0,
            annotation_text="prompt",
            annotation_position="top left",
        )
    if len(roll) and roll.is_drum.all():  # a beat alone: a row per drum, by name
        ticks = [int(p) for p in np.unique(roll.pitch)]
        labels = [_drum_name(p) for p in ticks]
    else:
        ticks = list(range(24, 109, 12))
        labels = [pretty_midi.note_number_to_name(p) for p in ticks]
    figure.update_layout(
        title=title,
        xaxis={"title": "seconds", "range": [0, max(roll.duration, 1.0)]},
        yaxis={"title": None, "tickvals": ticks, "ticktext": labels},
        height=340,
        margin=_MARGIN,
        legend={"orientation": "h", "y": -0.2},
    )
    return figure


def mood_bars(
    crowd: Mapping[str, float], personal: Mapping[str, float] | None, listener: str = ""
) -> go.Figure:
    """Bars of mood probabilities: the crowd's, and beside them one listener's."""
    order = sorted(crowd, key=lambda tag: (personal or crowd)[tag])  # likeliest at the top
    figure = go.Figure(
        go.Bar(
            x=[crowd[t] for t in order],
            y=order,
            orientation="h",
            name="Crowd",
            marker_color="#b7a6ff",
            hovertemplate="%{y}: %{x:.0%}<extra>Crowd</extra>",
        )
    )
    if personal is not None:
        figure.add_trace(
            go.Bar(
                x=[personal[t] for t in order],
                y=order,
                orientation="h",
                name=listener or "You",
                marker_color=ACCENT,
                hovertemplate="%{y}: %{x:.0%}<extra>" + (listener or "You") + "</extra>",
            )
        )
    figure.update_layout(
        title="Mood tags" + (f": the crowd and {listener}" if personal is not None else ""),
        barmode="group",
        xaxis={"range": [0, 1], "tickformat": ".0%", "title": None},
        yaxis={"title": None},
        height=60 + 34 * len(order),
        margin=_MARGIN,
        legend={"orientation": "h", "y": -0.08},
    )
    return figure


QUADRANT_NAMES = {
    "Q1": "Q1 · happy, excited",
    "Q2": "Q2 · tense, angry",
    "Q3": "Q3 · sad, tired",
    "Q4": "Q4 · calm, content",
}


def valence_arousal(valence: float, arousal: float) -> go.Figure:
    """The clip as a point on Russell's valence/arousal plane, quadrants named."""
    figure = go.Figure(
        go.Scatter(
            x=[valence],
            y=[arousal],
            mode="markers",
            marker={"size": 18, "color": ACCENT, "line": {"width": 2, "color": "#ffffff"}},
            hovertemplate="valence %{x:.2f}, arousal %{y:.2f}<extra></extra>",
        )
    )
    for name, (x, y) in zip(
        QUADRANT_NAMES.values(), [(0.5, 0.9), (-0.5, 0.9), (-0.5, -0.9), (0.5, -0.9)], strict=True
    ):
        figure.add_annotation(x=x, y=y, text=name, showarrow=False, font={"color": "#6b6880"})
    figure.update_layout(
        title="Valence and arousal",
        xaxis={"range": [-1.1, 1.1], "title": "valence (negative → positive)", "zeroline": True},
        yaxis={"range": [-1.1, 1.1], "title": "arousal (calm → energetic)", "zeroline": True},
        height=360,
        margin=_MARGIN,
        showlegend=False,
    )
    return figure


def neighbourhood(
    edges: Sequence[tuple[str, str]],
    voters: Mapping[str, float],
    listener: str,
    labels: Mapping[str, str],
) -> go.Figure:
    """A listener's neighbourhood in the follow graph; node colour = weight of their vote."""
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_node(listener)
    graph.add_nodes_from(voters)
    graph.add_edges_from((a, b) for a, b in edges if a in graph and b in graph)
    position = nx.spring_layout(graph, seed=0)
    xs, ys = [], []
    for a, b in graph.edges():
        xs += [position[a][0], position[b][0], None]
        ys += [position[a][1], position[b][1], None]
    nodes = list(graph.nodes())
    figure = go.Figure(
        go.Scatter(
            x=xs, y=ys, mode="lines", line={"width": 0.7, "color": "#c9c4dc"}, hoverinfo="skip"
        )
    )
    figure.add_trace(
        go.Scatter(
            x=[position[n][0] for n in nodes],
            y=[position[n][1] for n in nodes],
            mode="markers",
            marker={
                "size": [22 if n == listener else 10 + 8 * voters.get(n, 0) for n in nodes],
                "color": [1.2 if n == listener else voters.get(n, 0) for n in nodes],
                "colorscale": PROBABILITY_SCALE,
                "cmin": 0,
                "cmax": 1.2,
                "line": {"width": 1, "color": "#1f1a33"},
            },
            text=[
                f"{labels.get(n, n)}: "
                + ("you" if n == listener else f"vote weight {voters[n]:.2f}")
                for n in nodes
            ],
            hovertemplate="%{text}<extra></extra>",
        )
    )
    figure.update_layout(
        title="Whose tags count: follows within two steps (weight 1 / steps)",
        xaxis={"visible": False},
        yaxis={"visible": False},
        showlegend=False,
        height=380,
        margin=_MARGIN,
    )
    return figure


SYSTEM_COLOURS = ("#6d4aff", "#e8793a", "#2f9e6e", "#c53030")  # staff outlines, by system


def score_page(
    page: np.ndarray,
    staves: Sequence[tuple[float, float, float, float, int, str]],
    unsure: Sequence[tuple[float, float, str]],
    *,
    max_width: int = 1000,
) -> go.Figure:
    """A page of sheet music with each staff outlined (a colour per system) and the symbols
    the reader was unsure of marked.

    Args:
        page: grey page image.
        staves: (left, top, right, bottom, system, label) of each staff, page pixels.
        unsure: (x, y, hover text) of each unsure symbol, page pixels.
        max_width: the image is shrunk to at most this many pixels wide to keep the app light.
    """
    step = max(math.ceil(page.shape[1] / max_width), 1)
    shown = Image.fromarray(np.ascontiguousarray(page[::step, ::step]))
    buffer = io.BytesIO()
    shown.save(buffer, format="PNG", optimize=True)
    source = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    # A PNG, not a heatmap: a page is a million cells, which a heatmap would send as numbers.
    figure = go.Figure(go.Image(source=source, x0=0, y0=0, dx=step, dy=step, hoverinfo="skip"))
    for left, top, right, bottom, system, label in staves:
        colour = SYSTEM_COLOURS[system % len(SYSTEM_COLOURS)]
        figure.add_shape(type="rect", x0=left, x1=right, y0=top, y1=bottom,
                         line={"color": colour, "width": 2}, fillcolor=colour, opacity=0.12)
        figure.add_annotation(x=left, y=top, text=label, showarrow=False, xanchor="right",
                              yanchor="bottom", font={"color": colour, "size": 11})
    if unsure:
        figure.add_trace(go.Scatter(
            x=[u[0] for u in unsure], y=[u[1] for u in unsure], mode="markers",
            marker={"symbol": "circle-open", "size": 14, "color": "#c53030",
                    "line": {"width": 2}},
            hovertext=[u[2] for u in unsure], hoverinfo="text", name="unsure",
        ))
    # As tall as the page is at about the width of half the app (its column), no taller.
    height = int(min(900, 560 * page.shape[0] / page.shape[1] + 40))
    figure.update_layout(height=height, margin=_MARGIN, showlegend=False,
                         xaxis={"visible": False, "range": [0, page.shape[1]],
                                "constrain": "domain", "constraintoward": "left"},
                         yaxis={"visible": False, "autorange": "reversed", "scaleanchor": "x",
                                "constrain": "domain", "constraintoward": "top"})
    return figure
