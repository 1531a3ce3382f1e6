"""Home: what the studio does, and one click to try each capability that has landed."""

import streamlit as st

from ui.clip import bundled_examples, use_example
from ui.machine import rendering_problem

COMING = (  # capabilities of later milestones: (title, what it will do)
    (
        ":material/piano: Generate",
        "Compose new music in a genre: choose tempo, length and a "
        "seed; hear it, see the piano roll, download MIDI and audio.",
    ),
    (
        ":material/compare: Compare",
        "Set a generated piece beside real music of its genre and see how close they are.",
    ),
    (
        ":material/mood: Mood",
        "Tag a clip's moods, with valence and arousal, as you or another listener would hear them.",
    ),
    (
        ":material/travel_explore: Similar",
        "Find the tracks in your library that sound most like a clip.",
    ),
    (":material/library_music: Library", "Your collection, added once and searchable by sound."),
)

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

for column, (title, text) in zip([*top_row[1:], *bottom_row], COMING, strict=True):
    with column.container(border=True, height="stretch"):
        st.subheader(title)
        st.markdown(text)
        st.badge("coming", icon=":material/schedule:", color="gray")

problem = rendering_problem()
if problem:
    st.warning(
        f"{problem} Classifying works without it; generating and comparing will need it.",
        icon=":material/build:",
    )
