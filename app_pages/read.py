"""Read: a photo, scan or PDF of sheet music becomes a score to check, correct, play,
download and use everywhere in the studio."""

import streamlit as st

from engine.errors import EngineError
from ui import score
from ui.errors import show_error
from ui.library import add_piece, added_toast

st.title("Read")
st.caption(
    "Upload a photo, scan or PDF of printed sheet music. The studio finds every staff, reads "
    "its symbols, and builds a score you can check against the page, correct, play and "
    "download. Symbols it is unsure of are circled in red."
)

upload_column, example_column = st.columns([3, 2], gap="large")
with upload_column:
    upload = st.file_uploader("Page image or PDF", type=score.PAGE_TYPES, key="read_upload",
                              help="PNG, JPEG, TIFF, BMP, WebP or PDF (up to 40 pages).")
with example_column:
    examples = {example.title: example for example in score.example_pages()}
    chosen = st.selectbox("…or an example page", list(examples), index=None,
                          placeholder="Choose an example", key="read_example")
    example = examples.get(chosen)

if upload is not None:
    data, name = upload.getvalue(), upload.name
elif example is not None:
    data, name = example.path.read_bytes(), example.path.name
else:
    st.info("Upload a page of sheet music, or choose an example, to read it.",
            icon=":material/music_note:")
    st.stop()

try:
    reading = score.read_file(data, name)
except EngineError as error:
    show_error(error)
    st.stop()

for warning in reading.warnings:
    st.warning(warning, icon=":material/warning:")
summary = reading.summary()
figures = st.columns(6)
for column, (label, value) in zip(figures, [
    ("Pages", summary["pages"]), ("Systems", summary["systems"]), ("Parts", summary["parts"]),
    ("Bars", summary["measures"]), ("Notes", summary["notes"]),
    ("Confidence", f"{summary['mean_confidence']:.0%}"),
], strict=True):
    column.metric(label, value, border=True)
st.caption(f"Read in {summary['seconds']:.1f} s.")

try:
    musicxml, midi = reading.musicxml, reading.midi
except EngineError as error:
    # Something read cannot be written: say so, and keep the page and the editors to fix it.
    show_error(error)
    musicxml = midi = None
if midi is not None:
    listen, downloads = st.columns([3, 2], gap="large")
    with listen:
        try:
            st.audio(score.rendered_wav(midi, f"{score.stem(reading)}.mid"), format="audio/wav")
        except EngineError as error:
            show_error(error)
    with downloads:
        st.download_button("MusicXML", musicxml, f"{score.stem(reading)}.musicxml",
                           mime="application/vnd.recordare.musicxml+xml",
                           icon=":material/download:", key="read_download_musicxml")
        st.download_button("MIDI", midi, f"{score.stem(reading)}.mid", mime="audio/midi",
                           icon=":material/download:", key="read_download_midi")

    send = st.columns(4)
    if send[0].button("Compare it", icon=":material/compare:", key="read_to_compare"):
        score.send_to_page(reading, "compare")
    if send[1].button("Classify it", icon=":material/category:", key="read_to_classify"):
        score.send_to_page(reading, "classify")
    if send[2].button("Add to library", icon=":material/library_add:", key="read_to_library"):
        added = add_piece(musicxml, f"{score.stem(reading)}.musicxml", title=score.stem(reading),
                          source=f"read from {reading.name}")  # the track keeps its score
        if added is not None:
            added_toast(added)
    if send[3].button("Continue it in Generate", icon=":material/piano:",
                      key="read_to_generate"):
        score.send_to_generate(reading)

page = 0
if len(reading.pages) > 1:
    page = st.selectbox("Page", range(len(reading.pages)), format_func=lambda p: f"Page {p + 1}",
                        key="read_page")  # fmt: skip
image_column, engraved_column = st.columns(2, gap="large")
with image_column:
    st.subheader("The page, as found")
    st.plotly_chart(score.page_figure(reading, page), key="read_page_figure")
with engraved_column:
    st.subheader("The score, as read")
    for svg in score.engraving(musicxml) if musicxml else []:
        st.image(svg, width="stretch")

st.subheader("System by system")
st.caption("Each system of the page above its reading. Correct a staff by editing its symbols: "
           "pitch then duration for a note (C#5 quarter), chords stack pitches (C4 E4 G4 half), "
           "rest quarter, rest:measure, tie, | for a bar line.")
key = score.reading_key()
for system in reading.systems_on(page):
    with st.container(border=True):
        st.image(score.system_image(reading, page, system), caption=f"System {system + 1}",
                 width="stretch")
        for svg in score.system_engraving(reading, page, system):
            st.image(svg, width="stretch")
        for index, staff in reading.system_staves(page, system):
            unsure = f"{len(staff.unsure)} of {len(staff.symbols)} symbols unsure"
            with st.expander(f"Staff {staff.staff.index + 1}: {unsure}"):
                st.markdown(score.unsure_markdown(staff))
                uneven = reading.uneven_bars(index)
                if uneven:
                    st.caption(f"Bars {', '.join(map(str, uneven))} of this staff do not add up "
                               "to the time signature: check them first.")
                with st.form(key=f"read_edit_{key}_{index}"):
                    text = st.text_area("Symbols", score.staff_text(staff), height=160,
                                        key=f"read_text_{key}_{index}")
                    if st.form_submit_button("Apply", icon=":material/edit:"):
                        try:
                            score.correct_staff(reading, index, text)
                        except EngineError as error:
                            show_error(error)
                        else:
                            st.rerun()
