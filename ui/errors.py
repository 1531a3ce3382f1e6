"""Showing the engine's user errors in a page: a message a person can act on, no traceback."""

from __future__ import annotations

import streamlit as st

from engine.errors import EngineError, ModelUnavailable


def show_error(error: EngineError) -> None:
    """Show an engine error as an st.error box; the rest of the page keeps working.

    Args:
        error: the exception; its message is written for the listener already.
    """
    icon = (
        ":material/model_training:" if isinstance(error, ModelUnavailable) else ":material/error:"
    )
    st.error(str(error), icon=icon)
