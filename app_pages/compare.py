"""Compare: a piece (generated, or any file) beside real music, and whole generated sets."""

import streamlit as st

from engine import generate as gen
from engine.compare import MIN_SET_PIECES, SetComparison
from engine.errors import EngineError
from ui import charts, models
from ui.clip import COMPARE_CURRENT, COMPARE_SIDE, current_clip
from ui.errors import show_error
from ui.generation import choose_track, chosen_index, chosen_track, generated_tracks

REAL, CURRENT, UPLOAD, GENERATED = (
    "A real piece the generator never heard",
    COMPARE_CURRENT,
    "Upload a file",
    "The generated piece",
)
MUSIC_TYPES = ["wav", "flac", "ogg", "opus", "mp3", "mid", "midi"]
METRIC_HELP = {
    "chroma_similarity": "Cosine of the two average chroma vectors: how alike the harmony "
    "(the use of the 12 pitch classes) is. 1 = the same profile.",
    "embedding_cosine": "Cosine of the studio encoder's embeddings: how alike the two sound "
    "overall, as the genre model hears them. 1 = the same.",
    "log_spectral_distance": "Frame by frame, the RMS difference of the two mel spectra in dB, "
    "after matching loudness. 0 = identical; pieces that are not time-aligned score high.",
    "spectral_convergence": "Frame by frame, the size of the spectrogram difference relative "
    "to the original's. 0 = identical.",
}
METRIC_LABELS = {
    "chroma_similarity": "Chroma similarity",
    "embedding_cosine": "Embedding cosine",
    "log_spectral_distance": "Log-spectral distance",
    "spectral_convergence": "Spectral convergence",
}


def _pick(side: str, options: list[str], style: str | None) -> tuple[bytes, str] | None:
    """One side's chooser; returns (file bytes, name) or None when nothing is chosen yet."""
    choice = st.radio(side, options, key=f"compare_{side}_source")
    if choice == REAL:
        pieces = gen.heldout_pieces(style) or gen.heldout_pieces()
        if not pieces:
            st.caption("No held-out pieces are shipped with this generator.")
            return None
        piece = st.selectbox(
            "Piece", pieces, key=f"compare_{side}_piece",
            format_func=lambda p: f"{p.title} ({p.style}, {p.source})",
        )  # fmt: skip
        return piece.path.read_bytes(), f"{piece.title}.mid"
    if choice == CURRENT:
        clip = current_clip()
        return (clip.data, clip.name) if clip else None
    if choice == GENERATED:
        tracks = generated_tracks()
        index = st.selectbox(
            "Variation", range(len(tracks)), key="compare_variation",
            index=chosen_index(), format_func=lambda i: tracks[i].title,
            on_change=lambda: choose_track(st.session_state.compare_variation),
        )  # fmt: skip
        track = tracks[index]
        if track.wav is not None:
            return track.wav, f"{track.file_stem}.wav"
        return track.midi, f"{track.file_stem}.mid"
    upload = st.file_uploader(
        "Audio or MIDI", type=MUSIC_TYPES, key=f"compare_{side}_upload",
        help="WAV, FLAC, OGG, Opus, MP3, or MIDI (rendered with FluidSynth).",
    )  # fmt: skip
    return (upload.getvalue(), upload.name) if upload is not None else None


def _two_pieces() -> None:
    """Both choosers, then spectrograms, chroma, pitch classes and the four distances."""
    track = chosen_track()
    originals = [REAL, UPLOAD] + ([CURRENT] if current_clip() else [])
    others = ([GENERATED] if track else []) + [UPLOAD] + ([CURRENT] if current_clip() else [])
    left, right = st.columns(2, gap="large")
    with left:
        original = _pick("Original", originals, track.style if track else None)
    with right:
        other = _pick(COMPARE_SIDE, others, None)

    if original is None or other is None:
        st.info(
            "Choose both pieces. Generate one on the Generate page, or upload audio or MIDI.",
            icon=":material/compare:",
        )
        st.page_link("app_pages/generate.py", label="Generate a piece", icon=":material/piano:")
        return

    try:
        with st.spinner("Rendering and comparing…", show_time=True):
            result = models.compare_bytes(*original, *other)
            a_clip, b_clip = models.load_music(*original), models.load_music(*other)
    except EngineError as error:
        show_error(error)
        return

    for warning in result.warnings:
        st.warning(warning, icon=":material/warning:")

    players = st.columns(2, gap="large")
    for column, clip in zip(players, (a_clip, b_clip), strict=True):
        column.audio(clip.samples, sample_rate=clip.sample_rate)
        column.caption(f"**{clip.name}** · {clip.duration:.1f} s")

    metrics = st.columns(4)
    for column, (name, value) in zip(metrics, result.distances().items(), strict=True):
        column.metric(
            METRIC_LABELS[name], "n/a" if value is None else f"{value:.2f}",
            help=METRIC_HELP[name], border=True,
        )  # fmt: skip

    a_db, seconds = models.average_columns(
        result.a_db, result.frame_seconds, max_columns=models.SPECTROGRAM_COLUMNS
    )
    b_db, _ = models.average_columns(result.b_db, result.frame_seconds,
                                     max_columns=models.SPECTROGRAM_COLUMNS)  # fmt: skip
    spectrograms = st.columns(2)
    spectrograms[0].plotly_chart(
        charts.spectrogram(a_db, seconds, result.band_hz, title=f"Original: {result.a_name}"),
        key="spectrogram_a",
    )
    spectrograms[1].plotly_chart(
        charts.spectrogram(b_db, seconds, result.band_hz, title=f"Compared: {result.b_name}"),
        key="spectrogram_b",
    )
    st.plotly_chart(
        charts.spectrogram_difference(
            a_db - b_db, seconds, result.band_hz,
            title="Difference (red: the original is louder; blue: the compared piece is)",
        ),
        key="spectrogram_difference",
    )  # fmt: skip
    st.caption(f"Both loudness-matched and compared over their first {result.seconds:.1f} s.")

    chromagrams = st.columns(2)
    for column, side, name, chroma in (
        (chromagrams[0], "a", f"Original: {result.a_name}", result.a_chroma),
        (chromagrams[1], "b", f"Compared: {result.b_name}", result.b_chroma),
    ):
        reduced, chroma_seconds = models.average_columns(
            chroma, result.frame_seconds, max_columns=models.SPECTROGRAM_COLUMNS
        )
        column.plotly_chart(
            charts.chromagram(reduced, chroma_seconds, title=f"Chroma · {name}"),
            key=f"chroma_{side}",
        )
    st.plotly_chart(
        charts.pitch_class_bars(
            [(result.a_name, result.a_pitch_classes), (result.b_name, result.b_pitch_classes)]
        ),
        key="pitch_classes",
    )
    st.caption(
        "Chroma: how strongly each of the 12 pitch classes sounds, frame by frame (each frame "
        "scaled to its strongest). Pitch classes: the share of sounding time of each, counted "
        "from the notes when a piece is MIDI, else read from the audio's chroma."
    )


def _whole_sets() -> None:
    """A style and a set size, a button, then ours and Markov's Frechet distances."""
    st.caption(
        "Generate a few pieces of a style with our model and with the Markov baseline, render "
        "them, and measure how far each set sounds from real pieces of the style the generator "
        "never heard: the Frechet distance between the audio encoder's embeddings (~3 s "
        "patches) of each set and of the real pieces. Lower is closer to real music."
    )
    styles = gen.styles()
    track = chosen_track()
    left, right = st.columns(2)
    style = left.selectbox(
        "Style", styles, key="frechet_style",
        index=styles.index(track.style) if track and track.style in styles else 0,
    )  # fmt: skip
    available = len(gen.heldout_pieces(style))
    if available < MIN_SET_PIECES:
        st.caption(f"Too few real {style} pieces are shipped for a set.")
        return
    pieces = available
    if available > MIN_SET_PIECES:
        pieces = right.slider(
            "Pieces per set", MIN_SET_PIECES, available, value=available, key="frechet_pieces",
            help=f"Up to the {available} real {style} pieces shipped; each takes a second or two.",
        )  # fmt: skip
    if st.button("Measure the sets", icon=":material/functions:", key="frechet_run"):
        bar = st.progress(0.0, text="Starting…")
        try:
            st.session_state["frechet_result"] = models.compare_sets(
                style, pieces,
                progress=lambda fraction, message: bar.progress(fraction, text=message),
            )  # fmt: skip
        except EngineError as error:
            show_error(error)
            return
        finally:
            bar.empty()
    result: SetComparison | None = st.session_state.get("frechet_result")
    if result is None:
        return
    st.markdown(
        f"**{result.style.title()}**: {result.pieces} pieces per set, the first "
        f"{result.seconds:.0f} s of each."
    )
    ours, markov = st.columns(2)
    ours.metric(
        "Ours: Frechet distance", f"{result.ours:.1f}", border=True,
        delta=f"{result.ours - result.markov:+.1f} against Markov", delta_color="inverse",
        help="Our generator's set against the real pieces. Lower is closer.",
    )  # fmt: skip
    markov.metric(
        "Markov: Frechet distance", f"{result.markov:.1f}", border=True,
        help="The Markov-chain baseline's set against the same real pieces.",
    )  # fmt: skip
    st.caption(
        "With sets this small the distance is large even between two sets of real music, and "
        "it varies from run to run: read the two side by side, not against a fixed scale. "
        "docs/benchmarks.md has the figures for 20 pieces per style."
    )


st.title("Compare")
st.caption(
    "Set a piece beside real music: their spectrograms side by side, the difference, chroma, "
    "pitch classes and four distances. Generated pieces are compared with real pieces of "
    "their style that the generator never trained on."
)
pair_tab, sets_tab = st.tabs(["Two pieces", "Whole sets: ours against Markov"])
with pair_tab:
    _two_pieces()
with sets_tab:
    _whole_sets()
