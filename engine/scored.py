"""Tracks that come with their score: a MusicXML or MXL file engraved, timed and played.

The score is engraved once by verovio in the library's layout (its pages kept as images),
each system timed bar by bar (`engine.score.timemap`), and its audio rendered from verovio's
own MIDI of it, so where a passage sits on a page and when it sounds agree.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass, replace

from engine import audio
from engine.errors import InvalidMidi, InvalidScoreFile
from engine.score.engrave import UNITS_PER_SPACE, Layout
from engine.score.timemap import TimedScore, timed_score

SCORE_SUFFIXES = (".musicxml", ".mxl", ".xml")
MAX_SCORE_BYTES = 20 * 1024 * 1024  # a larger score file is refused
MAX_UNZIPPED_BYTES = 50 * 1024 * 1024  # an MXL unpacking to more is refused (zip bombs)
MAX_SCORED_MIDI_NOTES = 5000  # a longer MIDI file is added as sound only, without a score
LIBRARY_LAYOUT = Layout(header=True, page_width=2100, page_height=2970, scale=40)
PAGE_SPACE_PX = 12.0  # staff space on the stored page images, pixels


@dataclass
class ScoredTrack:
    """A score engraved and timed, with the audio that plays it."""

    musicxml: bytes  # the score as MusicXML, as the library keeps it
    timed: TimedScore  # its pages and each system's bars in place and time
    clip: audio.Clip  # verovio's MIDI of it rendered; keyed by the score's bytes

    def page_images(self) -> list[bytes]:
        """Its engraved pages as PNG files."""
        import cv2

        return [cv2.imencode(".png", page)[1].tobytes() for page in self.timed.pages]


def is_score_file(name: str) -> bool:
    """Whether a file name names a score the studio reads (MusicXML or MXL)."""
    return name.lower().endswith(SCORE_SUFFIXES)


def musicxml_of(data: bytes, name: str) -> bytes:
    """The MusicXML inside a .musicxml/.xml file or a compressed .mxl.

    Raises:
        InvalidScoreFile: empty, too large, a broken or oversized archive, or not MusicXML.
    """
    if not data:
        raise InvalidScoreFile(f"{name} is empty (0 bytes).")
    if len(data) > MAX_SCORE_BYTES:
        raise InvalidScoreFile(f"{name} is larger than {MAX_SCORE_BYTES // 2**20} MB.")
    if data[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                entries = [e for e in archive.infolist() if not e.filename.startswith("META-INF")
                           and e.filename.lower().endswith((".xml", ".musicxml"))]
                if not entries:
                    raise InvalidScoreFile(f"{name} is an archive without a MusicXML score.")
                if sum(e.file_size for e in archive.infolist()) > MAX_UNZIPPED_BYTES:
                    raise InvalidScoreFile(f"{name} unpacks to more than "
                                           f"{MAX_UNZIPPED_BYTES // 2**20} MB; not read.")
                data = archive.read(entries[0])
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            raise InvalidScoreFile(f"{name} is a broken MXL archive ({err}).") from None
    head = data[:4000].lower()  # the root element follows the XML declaration and DOCTYPE
    if b"<score-partwise" not in head and b"<score-timewise" not in head:
        raise InvalidScoreFile(f"{name} is not a MusicXML score (no <score-partwise> in it).")
    return data


def scored_track(data: bytes, name: str) -> ScoredTrack | None:
    """A score file, or a MIDI file made into a score, engraved, timed and played; None for
    other files and for MIDI that makes no score (`musicxml_from_midi`: it is kept as sound
    only). A MIDI file's track is known by the file's hash, so adding it again adds nothing.

    Raises:
        InvalidScoreFile, RenderingUnavailable: for a score file, as `engrave_track`.
    """
    if is_score_file(name):
        return engrave_track(data, name)
    if data[:4] != b"MThd":
        return None
    try:
        scored = engrave_track(musicxml_from_midi(data, name), name)
    except InvalidScoreFile:
        return None
    return replace(scored, clip=replace(scored.clip, sha256=hashlib.sha256(data).hexdigest()))


def musicxml_from_midi(data: bytes, name: str) -> bytes:
    """A Standard MIDI file written out as a score (music21 quantises it to notation).

    Raises:
        InvalidScoreFile: when it cannot be read, holds no pitched notes or too many
            (MAX_SCORED_MIDI_NOTES), or music21 cannot make a score of it.
    """
    import warnings

    import music21
    import pretty_midi

    from engine.errors import InvalidScore
    from engine.score.assemble import musicxml_bytes

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            midi = pretty_midi.PrettyMIDI(io.BytesIO(data))
    except Exception as err:  # noqa: BLE001 - mido and pretty_midi raise many kinds
        raise InvalidScoreFile(f"{name} cannot be read as MIDI ({err}).") from None
    notes = sum(len(i.notes) for i in midi.instruments if not i.is_drum)
    if not 0 < notes <= MAX_SCORED_MIDI_NOTES:
        raise InvalidScoreFile(f"{name} holds {notes} pitched notes; a score is made of "
                               f"1 to {MAX_SCORED_MIDI_NOTES}.")
    try:
        score = music21.converter.parse(data, format="midi")
        return musicxml_bytes(score)
    except (music21.exceptions21.Music21Exception, InvalidScore, ValueError, IndexError) as err:
        raise InvalidScoreFile(f"{name} cannot be written as a score ({err}).") from None


def engrave_track(data: bytes, name: str) -> ScoredTrack:
    """A score file engraved in the library's layout, timed, and played.

    Raises:
        InvalidScoreFile: when it is not a score verovio can engrave, or holds no notes.
        RenderingUnavailable: when FluidSynth or a soundfont is missing.
    """
    from engine.synth import render_midi

    musicxml = musicxml_of(data, name)
    zoom = PAGE_SPACE_PX / (UNITS_PER_SPACE * LIBRARY_LAYOUT.scale / 1000)
    try:
        timed = timed_score(musicxml.decode("utf-8", errors="replace"), LIBRARY_LAYOUT,
                            zoom=zoom)
    except ValueError as err:
        raise InvalidScoreFile(f"{name} cannot be engraved: {err}.") from None
    try:
        samples = render_midi(timed.midi, sample_rate=audio.SAMPLE_RATE, name=name)
    except InvalidMidi:
        raise InvalidScoreFile(f"{name} holds no notes to play.") from None
    clip = audio.from_array(samples, audio.SAMPLE_RATE, name=name)
    # Keyed by the score: renders differ a little from run to run (FluidSynth's effects).
    return ScoredTrack(musicxml, timed,
                       replace(clip, sha256=hashlib.sha256(musicxml).hexdigest()))
