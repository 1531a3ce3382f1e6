"""Generate: new music in a style, heard, seen as a piano roll, downloaded or compared."""

import secrets

import pretty_midi
import streamlit as st

from engine import generate as gen
from engine.errors import EngineError
from ui import charts, models
from ui.clip import set_current_clip
from ui.errors import show_error
from ui.generation import choose_track, generated_tracks, keep_generation, take_request
from ui.library import add_piece, added_toast
from ui.score import READ_START as READ
from ui.score import read_prompt as score_prompt

FRESH, HELDOUT, UPLOADED = "Start fresh", "Continue a real piece", "Continue my MIDI file"
STYLE_INSTRUMENTS = "The style's own"
MAX_SEED = gen.SEED_RANGE[1]


def _new_seed() -> None:
    st.session_state.generate_seed = secrets.randbelow(MAX_SEED + 1)


st.title("Generate")
st.caption(
    "A transformer trained on real music here composes a new piece in the style you pick. "
    "The same seed and settings always give the same piece."
)

style_names = gen.styles()
request = take_request()  # a one-click example from another page: {"style": ..., "seed": ...}
for name, value in (request or {}).items():
    st.session_state[f"generate_{name}"] = value

controls, sampling = st.columns(2, gap="large")
with controls:
    style = st.selectbox(
        "Style", style_names, key="generate_style", format_func=str.capitalize,
        help="Melodic styles: classical, folk, chinese folk, pop, renaissance. "
        "Drum grooves: rock, funk, jazz, latin, hiphop.",
    )  # fmt: skip
    drum_styles = [s for s in style_names if s in gen.DRUM_STYLES]
    drums = None
    if style not in gen.DRUM_STYLES:
        drums = st.selectbox(
            "Drums underneath", drum_styles, index=None, placeholder="No drums",
            format_func=str.capitalize, key="generate_drums",
        )  # fmt: skip
    seconds = st.slider("Length (seconds)", 5, 120, 30, step=5, key="generate_seconds")
    usual_tempo = st.toggle("The style's usual tempo", value=True, key="generate_usual_tempo")
    tempo = None
    if not usual_tempo:
        tempo = float(st.slider("Tempo (bpm)", 40, 240, 100, key="generate_tempo"))
    programs = [None, *range(128)]
    instrument = st.selectbox(
        "Instrument", programs, key="generate_instrument",
        format_func=lambda p: STYLE_INSTRUMENTS if p is None
        else f"{p + 1}. {pretty_midi.program_to_instrument_name(p)}",
        help="Play every melodic part on one General MIDI instrument.",
    )  # fmt: skip
with sampling:
    temperature = st.slider(
        "Temperature", 0.1, 1.5, 1.0, step=0.05, key="generate_temperature",
        help="Lower plays safer and more repetitive; higher takes more risks.",
    )  # fmt: skip
    top_p = st.slider(
        "Top-p", 0.5, 1.0, 0.95, step=0.01, key="generate_top_p",
        help="Sample only from the most likely notes that together hold this much probability.",
    )  # fmt: skip
    style_strength = st.slider(
        "Style strength", 0.0, 4.0, gen.DEFAULT_STYLE_STRENGTH, step=0.25,
        key="generate_style_strength",
        help="How strongly the music leans toward the style: 1 is the style as the model "
        "learned it, higher is more typical of it, 0 is music of no named style.",
    )  # fmt: skip
    seed_column, dice = st.columns([2, 1], vertical_alignment="bottom")
    seed = seed_column.number_input("Seed", 0, MAX_SEED, 0, key="generate_seed")
    dice.button("New seed", icon=":material/casino:", on_click=_new_seed)
    variations = st.slider("Variations", 1, 4, 1, key="generate_variations",
                           help="Pieces from seeds seed, seed + 1, ...")  # fmt: skip
    read_prompt = score_prompt()
    starts = [FRESH, HELDOUT, UPLOADED] + ([READ] if read_prompt else [])
    start = st.radio("Start from", starts, horizontal=True, key="generate_start")
    prompt = prompt_piece = None
    if start == HELDOUT:
        pieces = gen.heldout_pieces(style) or gen.heldout_pieces()
        chosen = st.selectbox(
            "Real piece (never trained on)",
            pieces,
            format_func=lambda p: f"{p.title} ({p.source})",
            key="generate_prompt_piece",
        )
        prompt_piece = chosen.piece_id if chosen else None
    elif start == UPLOADED:
        upload = st.file_uploader("MIDI file to continue", type=["mid", "midi"],
                                  key="generate_prompt_upload")  # fmt: skip
        prompt = upload.getvalue() if upload is not None else None
    elif start == READ:
        st.caption(f"Continues {read_prompt[0]}, read on the Read page.")
        prompt = read_prompt[1]
    prompt_bars = 4
    if start != FRESH:
        prompt_bars = st.slider("Bars of it to continue from", 1, 16, 4, key="generate_bars")

pressed = st.button("Generate", type="primary", icon=":material/piano:", key="generate_button")
if pressed or request:
    if start == UPLOADED and prompt is None:
        st.warning("Upload a MIDI file to continue, or start fresh.", icon=":material/upload:")
    else:
        settings = gen.GenerationSettings(
            style=style, seconds=float(seconds), tempo=tempo, temperature=temperature,
            top_p=top_p, style_strength=style_strength, seed=int(seed), variations=variations,
            instrument=instrument, drums=drums, prompt=prompt, prompt_piece=prompt_piece,
            prompt_bars=prompt_bars,
        )  # fmt: skip
        bar = st.progress(0.0, text="Composing…")
        try:
            result = models.generate_music(
                settings, progress=lambda f: bar.progress(min(f, 1.0), text="Composing…")
            )
        except EngineError as error:
            bar.empty()
            show_error(error)
        else:
            bar.empty()
            keep_generation(result)
            st.toast(f"Composed in {result.seconds_taken:.1f} s", icon=":material/check:")
            for warning in result.warnings:
                st.warning(warning, icon=":material/warning:")

tracks = generated_tracks()
if not tracks:
    st.info("Pick a style and press Generate.", icon=":material/piano:")
    st.stop()

tabs = st.tabs([track.title.capitalize() for track in tracks]) if len(tracks) > 1 else [st]
for index, (tab, track) in enumerate(zip(tabs, tracks, strict=True)):
    with tab.container(border=True):
        if track.wav is not None:
            st.audio(track.wav, format="audio/wav")
        else:
            st.warning("No audio here (FluidSynth is missing); the MIDI is ready.",
                       icon=":material/volume_off:")  # fmt: skip
        st.caption(
            f"**{track.title.capitalize()}** · {track.seconds:.0f} s at {track.tempo:.0f} bpm · "
            f"{len(track.piano_roll)} notes"
            + (f" · the first {track.prompt_seconds:.1f} s are the prompt"
               if track.prompt_seconds else "")
            + (f" · draw {track.draws}: the earlier ones replayed a training piece"
               if track.draws > 1 else "")
        )  # fmt: skip
        st.plotly_chart(
            charts.piano_roll(track.piano_roll, prompt_seconds=track.prompt_seconds),
            key=f"piano_roll_{index}",
        )
        row = st.container(horizontal=True)
        row.download_button(
            "MIDI", track.midi, file_name=f"{track.file_stem}.mid", mime="audio/midi",
            icon=":material/download:", on_click="ignore", key=f"download_midi_{index}",
        )  # fmt: skip
        if track.wav is not None:
            row.download_button(
                "Audio (WAV)", track.wav, file_name=f"{track.file_stem}.wav", mime="audio/wav",
                icon=":material/download:", on_click="ignore", key=f"download_wav_{index}",
            )  # fmt: skip
        if row.button("Compare with real music", icon=":material/compare:", key=f"cmp_{index}"):
            choose_track(index)
            st.switch_page("app_pages/compare.py")
        if track.wav is not None and row.button(
            "Classify it", icon=":material/category:", key=f"classify_{index}"
        ):
            set_current_clip(track.wav, f"{track.file_stem}.wav", source="generated")
            st.switch_page("app_pages/classify.py")
        if track.wav is not None and row.button(
            "Add to library", icon=":material/library_add:", key=f"library_{index}"
        ):
            added = add_piece(
                track.wav, f"{track.file_stem}.wav", title=track.title, source="generated"
            )
            if added is not None:
                added_toast(added)
