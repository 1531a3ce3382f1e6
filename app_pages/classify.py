"""Classify: which genres a clip sounds like, overall and window by window."""

import streamlit as st

from engine.errors import EngineError
from engine.genre import SEGMENT_SECONDS
from ui import charts, models
from ui.clip import clip_picker, clip_player
from ui.errors import show_error

st.title("Classify")
st.caption(
    f"Which genres does a clip sound like? The studio listens to the whole clip and to every "
    f"{SEGMENT_SECONDS:.0f}-second window of it. Probabilities are independent: a clip can be "
    "both jazz and blues."
)

clip = clip_picker()
if clip is None:
    st.info(
        "Upload a file, record a clip or choose an example to see its genre.",
        icon=":material/music_note:",
    )
    st.stop()

clip_player(clip)

try:
    with st.spinner(f"Listening to {clip.name}…", show_time=True):
        prediction = models.classify_bytes(clip.data, clip.name)
        spectrogram = models.spectrogram_bytes(clip.data, clip.name)
except EngineError as error:
    show_error(error)
    st.stop()

for warning in prediction.warnings:
    st.warning(warning, icon=":material/warning:")

ranked = sorted(prediction.genres, key=prediction.genres.get, reverse=True)
summary, bars = st.columns([1, 2], gap="large")
with summary:
    st.metric("Most likely genre", charts.genre_label(prediction.top), border=True)
    st.caption(charts.genre_summary(prediction))
with bars:
    st.plotly_chart(charts.genre_bars(prediction.genres), key="genre_bars")

if prediction.segments:
    st.plotly_chart(charts.genre_timeline(prediction.segments, ranked), key="genre_timeline")
st.plotly_chart(
    charts.spectrogram(spectrogram.db, spectrogram.seconds, spectrogram.band_hz), key="spectrogram"
)
