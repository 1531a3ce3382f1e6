"""The session's current listener: picked (or created) in the sidebar, used by the Mood page."""

from __future__ import annotations

import streamlit as st

from engine.errors import EngineError
from engine.library import Listener
from ui import models
from ui.errors import show_error

_CURRENT = "current_listener"  # session_state key: the listener id


def listener_label(listener: Listener) -> str:
    """How a listener is named in the app; simulated ones say so."""
    group = f" · {listener.group}" if listener.group else ""
    return f"{listener.name}{group}" + (" · simulated" if listener.simulated else "")


def current_listener() -> Listener | None:
    """The listener moods are personalised for, or None (the crowd's view)."""
    listener_id = st.session_state.get(_CURRENT)
    if listener_id is None:
        return None
    with models.LIBRARY_LOCK:
        return models.library().listener(listener_id)


def _create() -> None:
    name = st.session_state.get("new_listener_name", "")
    follows = st.session_state.get("new_listener_follows", [])
    try:
        with models.LIBRARY_LOCK:
            listener = models.library().add_listener(name, follows=follows)
    except EngineError as error:
        st.session_state["new_listener_error"] = str(error)
        return
    st.session_state[_CURRENT] = listener.listener_id
    st.session_state["listener_picker"] = listener.listener_id
    st.session_state["new_listener_name"] = ""
    st.session_state["new_listener_follows"] = []


def listener_sidebar() -> None:
    """The sidebar panel: pick whose moods to show, or create a listener."""
    with st.sidebar:
        st.subheader("Listener")
        try:
            with models.LIBRARY_LOCK:
                everyone = models.library().listeners()
        except EngineError as error:
            show_error(error)
            return
        labels = {x.listener_id: listener_label(x) for x in everyone}
        choice = st.selectbox(
            "Personalise moods for",
            list(labels),
            index=None,
            format_func=labels.get,
            placeholder="Everyone (the crowd)",
            key="listener_picker",
            help="Moods are personalised from whom a listener follows and their own answers.",
        )
        st.session_state[_CURRENT] = choice
        with st.popover("New listener", icon=":material/person_add:"):
            st.text_input("Name", key="new_listener_name")
            st.multiselect(
                "Follows",
                list(labels),
                format_func=labels.get,
                key="new_listener_follows",
                help="Listeners whose tags should count for them (closer counts more).",
            )
            st.button("Create", on_click=_create, key="new_listener_create")
            error = st.session_state.pop("new_listener_error", None)
            if error:
                st.error(error, icon=":material/error:")
