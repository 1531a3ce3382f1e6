"""Mood: a clip's mood tags as the crowd hears them and as the chosen listener does."""

import streamlit as st

from engine import listeners
from engine.demo import has_demo_community
from engine.errors import EngineError
from ui import charts, models
from ui.clip import clip_picker, clip_player
from ui.errors import show_error
from ui.library import build_demo_library
from ui.listener import current_listener, listener_label

ANSWERED_TAGS = 6  # tags offered for accept/reject: the listener's likeliest
GUESS_AUC = 0.6  # below this held-out ROC-AUC a tag is close to a guess
# How a tag's held-out ROC-AUC reads, from the lowest band up (the last band has no bound).
READINGS = (
    (GUESS_AUC, "close to a guess"),
    (0.75, "fair"),
    (0.85, "good"),
    (float("inf"), "strong"),
)


def _reading(roc_auc: float) -> str:
    """A tag's held-out ROC-AUC in words."""
    return next(words for bound, words in READINGS if roc_auc < bound)


def _reliability(top: list[str] | tuple[str, ...]) -> None:
    """How well the model hears each tag: a warning for weak top tags, the figures below."""
    reliability = models.mood_reliability()
    if not reliability:
        return
    weak = [r for r in reliability if r.tag in top and r.roc_auc < GUESS_AUC]
    if weak:
        st.caption(
            "The model barely hears "
            + ", ".join(f"**{r.tag}** (ROC-AUC {r.roc_auc:.2f})" for r in weak)
            + " on clips it never trained on: "
            + ("this tag is" if len(weak) == 1 else "these tags are")
            + " little more than a guess."
        )
    with st.expander("How well the model hears each tag", icon=":material/insights:"):
        st.caption(
            f"ROC-AUC of each tag on {reliability[0].measured} held-out real clips: 0.5 is "
            "guessing, 1.0 ranks every clip that carries the tag above every clip that does "
            "not. Few clips carry some tags, so their figures are rough."
        )
        st.dataframe(
            [
                {
                    "tag": r.tag,
                    "ROC-AUC": round(r.roc_auc, 2),
                    "reading": _reading(r.roc_auc),
                    "held-out clips with it": r.clips,
                }
                for r in sorted(reliability, key=lambda r: -r.roc_auc)
            ],
            hide_index=True,
        )


def _build_demo() -> None:
    summary = build_demo_library(corpus=False)
    if summary is not None:
        st.toast(
            f"{summary['tracks']} tracks and {summary['listeners']} simulated listeners added.",
            icon=":material/group:",
        )


st.title("Mood")
st.caption(
    "Which of twelve moods a clip carries, and where it sits between sad and happy, calm and "
    "energetic. Pick a listener in the sidebar to see the moods as they would hear them: "
    "personalised from the listeners they follow and from their own answers."
)

with models.LIBRARY_LOCK:
    library = models.library()
    community = has_demo_community(library)
if not community:
    with st.container(border=True):
        st.markdown(
            "**No listening community yet.** The studio can set up a demo: the bundled and "
            "held-out pieces as a small library, and 200 **simulated** listeners in four "
            "groups who hear moods differently, follow each other and tag playlists."
        )
        if st.button("Set up the demo community", icon=":material/group_add:", key="demo"):
            _build_demo()
            st.rerun()

clip = clip_picker()
if clip is None:
    st.info("Upload, record or choose a clip to see its moods.", icon=":material/mood:")
    st.stop()
clip_player(clip)

try:
    with st.spinner(f"Listening to {clip.name}…", show_time=True):
        crowd = models.moods_bytes(clip.data, clip.name)
except EngineError as error:
    show_error(error)
    st.stop()
for warning in crowd.warnings:
    st.warning(warning, icon=":material/warning:")

listener = current_listener()
personal = None
if listener is not None:
    with models.LIBRARY_LOCK:
        feedback = library.feedback(listener.listener_id)
    personal = listeners.personal_moods(
        crowd.tags,
        listener.listener_id,
        models.calibrations(),
        answers=[(f.tag, f.accepted, f.crowd) for f in feedback],
        clip_answers={f.tag: f.accepted for f in feedback if f.clip == clip.sha256},
    )

shown = personal.tags if personal else crowd.tags
summary, plane = st.columns([1, 1], gap="large")
with summary:
    top = personal.top_tags if personal else crowd.top_tags
    st.metric("Moods" + (f" for {listener.name}" if listener else ""), ", ".join(top), border=True)
    st.caption(
        f"Russell quadrant **{charts.QUADRANT_NAMES[crowd.quadrant]}** "
        f"(valence {crowd.valence:+.2f}, arousal {crowd.arousal:+.2f})."
    )
    if listener is None:
        st.caption("The crowd's view. Pick a listener in the sidebar to personalise it.")
    elif personal.evidence == 0:
        st.caption(f"Nothing is known yet of how {listener.name} hears: the crowd's view stands.")
    else:
        st.caption(
            f"Tuned to {listener.name} by the votes of the listeners they follow "
            f"({personal.evidence:.0f} tag judgements) and their answers."
        )
with plane:
    st.plotly_chart(charts.valence_arousal(crowd.valence, crowd.arousal), key="valence_arousal")

st.plotly_chart(
    charts.mood_bars(
        crowd.tags, personal.tags if personal else None, listener.name if listener else ""
    ),
    key="mood_bars",
)
_reliability(personal.top_tags if personal else crowd.top_tags)

if listener is not None:
    st.subheader(f"Does {listener.name} hear these?")
    st.caption("Answers are stored; this clip shows them at once, other clips learn from them.")
    ranked = sorted(shown, key=lambda t: -shown[t])
    offered = ranked[:ANSWERED_TAGS] + [t for t in ranked[ANSWERED_TAGS:] if t in personal.answers]
    for tag in offered:
        row = st.columns([2, 1, 1, 3], vertical_alignment="center")
        answered = personal.answers.get(tag)
        mark = {True: " · yes", False: " · no"}.get(answered, "")
        row[0].markdown(f"**{tag}** {shown[tag]:.0%}{mark}")
        for column, accepted, label, icon in (
            (row[1], True, "Yes", ":material/check:"),
            (row[2], False, "No", ":material/close:"),
        ):
            if column.button(
                label,
                icon=icon,
                key=f"answer_{tag}_{accepted}",
                type="primary" if answered is accepted else "secondary",
            ):
                with models.LIBRARY_LOCK:
                    library.add_feedback(
                        listener.listener_id,
                        clip.sha256,
                        tag,
                        accepted=accepted,
                        crowd=crowd.tags[tag],
                    )
                st.rerun()

    with models.LIBRARY_LOCK:
        follows = library.follows()
        graph = listeners.follow_graph(follows)
        voters = listeners.neighbourhood(graph, listener.listener_id, radius=2)
        labels = {x.listener_id: listener_label(x) for x in library.listeners()}
    if voters:
        weights = {v.listener_id: v.weight for v in voters}
        st.plotly_chart(
            charts.neighbourhood(follows, weights, listener.listener_id, labels),
            key="neighbourhood",
        )
        st.dataframe(
            [
                {
                    "listener": labels.get(v.listener_id, v.listener_id),
                    "steps": v.steps,
                    "vote weight": round(v.weight, 2),
                }
                for v in voters
            ],
            hide_index=True,
            height=220,
        )
    else:
        st.caption(f"{listener.name} follows nobody yet: only their own answers personalise.")
if community:
    st.caption("Listeners marked *simulated* are the demo community, not real people.")
