"""What this machine lacks for the studio's optional parts, said in words a person can act on."""

from __future__ import annotations

import streamlit as st

from engine.errors import RenderingUnavailable


@st.cache_resource(show_spinner=False, ttl=60)
def rendering_problem() -> str | None:
    """Why MIDI cannot be rendered to audio here (FluidSynth or a soundfont missing), or None.

    Rendering is needed by the Generate and Compare pages; the rest of the studio works
    without it. Checked at most once a minute, so installing FluidSynth needs no restart.
    """
    from engine import synth

    try:
        import fluidsynth  # noqa: F401  (pyfluidsynth raises ImportError without libfluidsynth)
    except (ImportError, OSError):
        return (
            "MIDI cannot be rendered to audio on this machine: the FluidSynth library is "
            f"missing. Install it with `{synth.INSTALL_HINT}`."
        )
    try:
        synth.default_soundfont()
    except RenderingUnavailable as error:
        return str(error)
    return None
