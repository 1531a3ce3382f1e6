"""Music Studio: the app's entry point (`streamlit run streamlit_app.py`).

Sets up the page, the navigation and the shared sidebar, and on the first run starts building
the demo library in the background; it loads no model itself.

The pages live in app_pages/, not pages/: Streamlit treats a folder named pages/ next to the
entry point as the old multipage layout, and the first request after a server start then runs
a page without this script (no sidebar, wrong navigation).
"""

from pathlib import Path

import streamlit as st

from ui.clip import clip_sidebar
from ui.library import start_first_run_demo
from ui.listener import listener_sidebar

st.set_page_config(
    page_title="Music Studio",
    page_icon=str(Path(__file__).parent / "ui" / "icon.png"),  # served here: no icon host asked
    layout="wide",
    menu_items={"About": "Music Studio: generate, compare, classify and explore music, locally."},
)

page = st.navigation(
    [
        st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("app_pages/generate.py", title="Generate", icon=":material/piano:"),
        st.Page("app_pages/compare.py", title="Compare", icon=":material/compare:"),
        st.Page("app_pages/classify.py", title="Classify", icon=":material/category:"),
        st.Page("app_pages/mood.py", title="Mood", icon=":material/mood:"),
        st.Page("app_pages/similar.py", title="Similar", icon=":material/travel_explore:"),
        st.Page("app_pages/library.py", title="Library", icon=":material/library_music:"),
        st.Page("app_pages/read.py", title="Read", icon=":material/queue_music:"),
        st.Page("app_pages/score_search.py", title="Score search", icon=":material/plagiarism:"),
    ]
)
start_first_run_demo()
clip_sidebar()
listener_sidebar()
page.run()
