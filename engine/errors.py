"""The studio's error hierarchy: every failure a user can cause is one of these."""

from __future__ import annotations


class EngineError(Exception):
    """Base class for errors a person can act on; the message says what to do."""


class InvalidAudio(EngineError):
    """The audio given cannot be analysed."""


class MissingFile(InvalidAudio):
    """No file exists at the path given."""


class EmptyFile(InvalidAudio):
    """The file holds no bytes at all."""


class UnsupportedFormat(InvalidAudio):
    """The data is not audio in a format the studio reads."""


class CorruptAudio(InvalidAudio):
    """The data starts like audio but is truncated or damaged."""


class NoSamples(InvalidAudio):
    """The audio decodes to zero samples."""


class NonFiniteSamples(InvalidAudio):
    """The audio holds NaN or infinite sample values."""


class InvalidMidi(EngineError):
    """The MIDI given cannot be read or holds no notes."""


class RenderingUnavailable(EngineError):
    """MIDI cannot be rendered to audio on this machine (no FluidSynth or soundfont)."""


class ModelUnavailable(EngineError):
    """A trained model's checkpoint is missing or unreadable."""


class InvalidSettings(EngineError):
    """A setting is unknown or outside its allowed range; the message names both."""


class IndexUnavailable(EngineError):
    """A saved search index is missing, damaged or unusable here: rebuild it from the library."""


class InvalidScore(EngineError):
    """The file cannot be read as pages of sheet music (not an image or PDF, too large, too
    many pages, or no staves found)."""


class NoStaves(InvalidScore):
    """A page was read but holds no staff of five lines the reader can find."""


class InvalidScoreFile(EngineError):
    """A score file (MusicXML, MXL) that cannot be read, engraved or played."""
