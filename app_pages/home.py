"""Home: what the studio does, and one click to try each capability that has landed."""

import streamlit as st

from engine.errors import EngineError
from engine.generate import GenerationSettings
from ui import models
from ui.clip import bundled_examples, use_example
from ui.errors import show_error
from ui.generation import keep_generation, request_generation
from ui.machine import rendering_problem

st.title("Music Studio")
st.markdown(
    "Make music by genre, set it beside real music, and find out what a recording is: "
    "its **genre** overall and moment by moment, its **moods**, and the tracks it resembles. "
    "Everything runs on this machine; your clips never leave it."
)

examples = bundled_examples()
top_row, bottom_row = st.columns(3), st.columns(3)

with top_row[0].container(border=True, height="stretch"):
    st.subheader(":material/category: Classify")
    st.markdown(
        "Upload, record or pick a clip and see which genres it sounds like: "
        "overall and in every 5-second window, beside its spectrogram."
    )
    if st.button(
        "Classify an example clip",
        type="primary",
        icon=":material/play_arrow:",
        disabled=not examples,
        help=f"Loads “{examples[0].title}” and opens Classify."
        if examples
        else "No examples bundled.",
    ):
        use_example(examples[0])
        st.switch_page("app_pages/classify.py")
    st.page_link(
        "app_pages/classify.py", label="Or bring your own clip", icon=":material/upload_file:"
    )

with top_row[1].container(border=True, height="stretch"):
    st.subheader(":material/piano: Generate")
    st.markdown(
        "Compose new music in a style (classical, folk, chinese folk, pop, renaissance, or "
        "drum grooves): hear it, see its piano roll, download MIDI and audio."
    )
    if st.button("Generate a folk tune", type="primary", icon=":material/play_arrow:"):
        request_generation(style="folk", seconds=20, seed=7)
        st.switch_page("app_pages/generate.py")
    st.page_link("app_pages/generate.py", label="Or choose every setting", icon=":material/tune:")

with top_row[2].container(border=True, height="stretch"):
    st.subheader(":material/compare: Compare")
    st.markdown(
        "Set a generated piece beside real music of its style that the generator never heard: "
        "spectrograms, their difference, and four distances."
    )
    if st.button("Compare a new chorale with Bach", type="primary", icon=":material/play_arrow:"):
        try:
            with st.spinner("Composing a chorale…"):
                result = models.generate_music(
                    GenerationSettings(style="classical", seconds=20, seed=1)
                )
        except EngineError as error:
            show_error(error)
        else:
            keep_generation(result)
            st.switch_page("app_pages/compare.py")
    st.page_link(
        "app_pages/compare.py", label="Or compare your own files", icon=":material/upload_file:"
    )

with bottom_row[0].container(border=True, height="stretch"):
    st.subheader(":material/mood: Mood")
    st.markdown(
        "Tag a clip's moods, with valence and arousal, as the crowd hears them and as a "
        "listener of the (simulated) demo community would."
    )
    if st.button(
        "Tag the moods of an example",
        type="primary",
        icon=":material/play_arrow:",
        disabled=not examples,
    ):
        use_example(examples[-1])
        st.switch_page("app_pages/mood.py")
    st.page_link("app_pages/mood.py", label="Or bring your own clip", icon=":material/upload_file:")

with bottom_row[1].container(border=True, height="stretch"):
    st.subheader(":material/travel_explore: Similar")
    st.markdown(
        "Find the tracks in your library that sound most like a clip: an excerpt finds the "
        "whole piece, and a tune finds its kin."
    )
    if st.button(
        "Find tracks like an example",
        type="primary",
        icon=":material/play_arrow:",
        disabled=not examples,
    ):
        use_example(examples[min(1, len(examples) - 1)])
        st.switch_page("app_pages/similar.py")
    st.page_link(
        "app_pages/similar.py", label="Or search with your own clip", icon=":material/upload_file:"
    )

with bottom_row[2].container(border=True, height="stretch"):
    st.subheader(":material/library_music: Library")
    st.markdown(
        "Your collection, analysed once and searchable by sound: add files, find them by "
        "title, play or delete them. A demo library can be built from installed music."
    )
    if st.button("Open the library", type="primary", icon=":material/play_arrow:"):
        st.switch_page("app_pages/library.py")
    st.page_link(
        "app_pages/library.py", label="Or add your own music", icon=":material/library_add:"
    )

problem = rendering_problem()
if problem:
    st.warning(
        f"{problem} Classifying works without it; generated pieces will have no audio, and "
        "MIDI files cannot be compared.",
        icon=":material/build:",
    )
