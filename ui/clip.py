"""The session's current clip, and the shared widgets that choose, show and play it.

A clip chosen on any page (uploaded, recorded or a bundled example) stays current for every
other page until another is chosen; it lives in `st.session_state` as raw bytes plus a hash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from engine.errors import EngineError
from ui import models

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
UPLOAD_TYPES = ("wav", "flac", "ogg", "opus", "mp3")  # what engine.audio.load reads
RECORDING_RATE = 22_050  # Hz: the studio's analysis rate, so recordings need no resampling
MIME_TYPES = {
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".mp3": "audio/mpeg",
}

_CURRENT = "current_clip"  # session_state key of the ClipFile
_UPLOAD = "clip_upload"  # widget key prefixes; a suffix bumps to empty a widget
_RECORDING = "clip_recording"
_EXAMPLE = "clip_example"


@dataclass(frozen=True)
class ClipFile:
    """An audio file the listener chose, as given (not yet decoded)."""

    data: bytes  # the file's bytes exactly as uploaded, recorded or bundled
    name: str  # file name shown to the listener and used in messages
    sha256: str  # hash of `data`: the cache key of every analysis
    source: str  # "upload", "recording", "example", "generated" or "score" (read sheet music)

    @property
    def mime_type(self) -> str:
        """MIME type for players and downloads, from the file name."""
        return MIME_TYPES.get(Path(self.name).suffix.lower(), "audio/wav")


@dataclass(frozen=True)
class Example:
    """A bundled example clip (see examples/README.md)."""

    title: str  # what the listener sees, e.g. "Bach: chorale BWV 66.6"
    path: Path  # the audio file in examples/
    description: str = ""  # one line on what it is and how it was made


def current_clip() -> ClipFile | None:
    """The clip every page works on, or None before one is chosen."""
    return st.session_state.get(_CURRENT)


def set_current_clip(data: bytes, name: str, *, source: str) -> ClipFile:
    """Make `data` the current clip of this session.

    Args:
        data: the audio file's bytes.
        name: its file name.
        source: "upload", "recording", "example", "generated" or "score".
    """
    clip = ClipFile(data=data, name=name, sha256=models.sha256_of(data), source=source)
    st.session_state[_CURRENT] = clip
    return clip


COMPARE_CURRENT = "The current clip"  # the Compare page's choice of the current clip
COMPARE_SIDE = "Compared with it"  # the Compare page's second side


def compare_the_current_clip() -> None:
    """Set the Compare page's second side to the current clip (before it opens)."""
    st.session_state[f"compare_{COMPARE_SIDE}_source"] = COMPARE_CURRENT


def clear_current_clip() -> None:
    """Forget the current clip."""
    st.session_state.pop(_CURRENT, None)


@st.cache_data(show_spinner=False)
def bundled_examples() -> list[Example]:
    """The example clips shipped in examples/, in the order of examples/index.json."""
    index = EXAMPLES_DIR / "index.json"
    if index.is_file():
        entries = json.loads(index.read_text(encoding="utf-8"))
        examples = [
            Example(
                title=e["title"],
                path=EXAMPLES_DIR / e["file"],
                description=e.get("description", ""),
            )
            for e in entries
        ]
        return [e for e in examples if e.path.is_file()]
    paths = sorted(p for p in EXAMPLES_DIR.glob("*") if p.suffix.lower() in MIME_TYPES)
    return [Example(title=p.stem.replace("_", " ").replace("-", " "), path=p) for p in paths]


def use_example(example: Example) -> ClipFile:
    """Make a bundled example the current clip."""
    return set_current_clip(example.path.read_bytes(), example.path.name, source="example")


def _key(prefix: str) -> str:
    """The current key of a widget; bumping its generation empties the widget."""
    return f"{prefix}_{st.session_state.get(prefix + '_generation', 0)}"


def _empty(prefix: str) -> None:
    st.session_state[prefix + "_generation"] = st.session_state.get(prefix + "_generation", 0) + 1


def _on_upload() -> None:
    uploaded = st.session_state.get(_key(_UPLOAD))
    if uploaded is None:  # the listener removed the file: forget it if it is current
        clip = current_clip()
        if clip is not None and clip.source == "upload":
            clear_current_clip()
        return
    set_current_clip(uploaded.getvalue(), uploaded.name, source="upload")
    _empty(_RECORDING)
    st.session_state[_EXAMPLE] = None


def _on_recording() -> None:
    recorded = st.session_state.get(_key(_RECORDING))
    if recorded is None:
        clip = current_clip()
        if clip is not None and clip.source == "recording":
            clear_current_clip()
        return
    set_current_clip(recorded.getvalue(), "recording.wav", source="recording")
    _empty(_UPLOAD)
    st.session_state[_EXAMPLE] = None


def _on_example() -> None:
    title = st.session_state.get(_EXAMPLE)
    example = next((e for e in bundled_examples() if e.title == title), None)
    if example is None:
        return
    use_example(example)
    _empty(_UPLOAD)
    _empty(_RECORDING)


def clip_picker() -> ClipFile | None:
    """Upload, record or pick an example; returns the current clip (possibly chosen earlier).

    Choosing in one widget empties the others, so what the widgets show is what is current.
    """
    upload, record, example = st.tabs(
        [
            ":material/upload_file: Upload",
            ":material/mic: Record",
            ":material/library_music: Examples",
        ]
    )
    with upload:
        st.file_uploader(
            "Upload an audio file",
            type=list(UPLOAD_TYPES),
            key=_key(_UPLOAD),
            on_change=_on_upload,
            help="WAV, FLAC, OGG (Vorbis or Opus) or MP3, up to 200 MB. "
            "At most the first 10 minutes are analysed.",
        )
    with record:
        st.audio_input(
            "Record a clip with your microphone",
            sample_rate=RECORDING_RATE,
            key=_key(_RECORDING),
            on_change=_on_recording,
        )
    with example:
        examples = bundled_examples()
        current = current_clip()
        if current is not None and current.source == "example" and _EXAMPLE not in st.session_state:
            # Chosen elsewhere (the home page): show it as selected here.
            st.session_state[_EXAMPLE] = next(
                (e.title for e in examples if e.path.name == current.name), None
            )
        st.selectbox(
            "Try a bundled example",
            [e.title for e in examples],
            index=None,
            placeholder="Choose an example…" if examples else "No examples bundled",
            key=_EXAMPLE,
            on_change=_on_example,
            disabled=not examples,
            help="Short renders of public-domain scores; see examples/README.md.",
        )
    return current_clip()


def clip_player(clip: ClipFile, *, download: bool = True) -> None:
    """An audio player for the clip, with its name, length and a download button."""
    st.audio(clip.data, format=clip.mime_type)
    row = st.container(
        horizontal=True, horizontal_alignment="distribute", vertical_alignment="center"
    )
    row.caption(f"**{clip.name}** · {_length_text(clip)} · {_SOURCE_TEXT[clip.source]}")
    if download:
        row.download_button(
            "Download",
            clip.data,
            file_name=clip.name,
            mime=clip.mime_type,
            icon=":material/download:",
            on_click="ignore",
            key=f"download_{clip.sha256[:16]}",
        )


_SOURCE_TEXT = {
    "upload": "uploaded",
    "recording": "recorded",
    "example": "bundled example",
    "generated": "generated here",
    "score": "read from sheet music",
}


def _length_text(clip: ClipFile) -> str:
    try:
        seconds = models.load_clip(clip.data, clip.name).duration
    except EngineError:
        return "cannot be decoded"
    minutes, rest = divmod(int(seconds), 60)  # whole seconds, as audio players show
    return f"{minutes}:{rest:02d}"


def clip_sidebar() -> None:
    """The shared sidebar panel: which clip is current, its length and a small player."""
    with st.sidebar:
        st.subheader("Current clip")
        clip = current_clip()
        if clip is None:
            st.caption("No clip yet. Upload, record or pick an example on the Classify page.")
            return
        st.markdown(f"**{clip.name}**")
        st.caption(f"{_length_text(clip)} · {_SOURCE_TEXT[clip.source]}")
        st.audio(clip.data, format=clip.mime_type)
