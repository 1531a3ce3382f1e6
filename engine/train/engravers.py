"""Pages engraved by notation software other than verovio: MuseScore 3 and LilyPond.

The score reader trains on verovio's pages and MuseScore's (two engravers' spacing, glyphs and
line weights), and is measured on LilyPond's, which it never sees in training. Both programs
run as subprocesses on MusicXML, headless, with a time limit; only the data build and the
benchmark need them (Debian: `apt-get install musescore3 lilypond`).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.score.pages import load_pages

MUSESCORE = "mscore3"
LILYPOND = "lilypond"
MUSICXML2LY = "musicxml2ly"  # LilyPond's own MusicXML importer
MUSESCORE_FONTS = ("Emmentaler", "Bravura", "Gonville", "MuseJazz")
TIMEOUT_S = 180


class EngraverError(RuntimeError):
    """An engraver is missing, failed, or ran out of time."""


def require(*programs: str) -> None:
    """Raise EngraverError naming the programs that are not installed."""
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        raise EngraverError(f"{', '.join(missing)} not installed "
                            "(Debian: apt-get install musescore3 lilypond)")


@dataclass(frozen=True)
class MuseScoreStyle:
    """The MuseScore style settings varied between pages, and the resolution of the PNG."""

    font: str
    spatium_mm: float  # staff space
    page_width_in: float
    staff_line_width: float  # in staff spaces
    stem_width: float
    measure_spacing: float
    space_px: float  # staff space in the rendered image

    @property
    def dpi(self) -> int:
        """PNG resolution giving `space_px` pixels per staff space."""
        return max(int(round(self.space_px * 25.4 / self.spatium_mm)), 30)

    def settings(self) -> str:
        """The style's settings as the <Style> block of a MuseScore file holds them."""
        return f"""
    <pageWidth>{self.page_width_in:.3f}</pageWidth>
    <pagePrintableWidth>{self.page_width_in - 0.8:.3f}</pagePrintableWidth>
    <staffLineWidth>{self.staff_line_width:.3f}</staffLineWidth>
    <stemWidth>{self.stem_width:.3f}</stemWidth>
    <measureSpacing>{self.measure_spacing:.3f}</measureSpacing>
    <musicalSymbolFont>{self.font}</musicalSymbolFont>
    <musicalTextFont>{self.font} Text</musicalTextFont>
    <Spatium>{self.spatium_mm:.4f}</Spatium>
"""


def random_musescore_style(rng: random.Random) -> MuseScoreStyle:
    """A MuseScore style drawn at random within what printed music uses."""
    return MuseScoreStyle(
        font=rng.choice(MUSESCORE_FONTS),
        spatium_mm=rng.uniform(1.4, 2.0),
        page_width_in=rng.choice((8.27, 8.5, 9.0, 10.0)),
        staff_line_width=rng.uniform(0.07, 0.16),
        stem_width=rng.uniform(0.09, 0.2),
        measure_spacing=rng.uniform(1.0, 1.5),
        space_px=rng.uniform(8, 15),
    )


def _run(command: list[str], folder: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(folder)}
    try:
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True,
                              timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as err:
        raise EngraverError(f"{command[0]} ran out of time") from err
    if done.returncode != 0:
        raise EngraverError(f"{command[0]} failed: {done.stderr.decode(errors='replace')[-300:]}")


def _pages(folder: Path, stem: str) -> list[np.ndarray]:
    """The PNG pages `stem`.png, or `stem`-1.png, `stem`-2.png, ... (MuseScore), or
    `stem`-page1.png, ... (LilyPond) in page order, grey."""
    numbered = {int(m.group(1)): p for p in folder.glob(f"{stem}*.png")
                if (m := re.fullmatch(rf"{re.escape(stem)}(?:-page|-)?(\d*)\.png", p.name))
                and m.group(1)}
    paths = [numbered[k] for k in sorted(numbered)] or sorted(folder.glob(f"{stem}.png"))
    if not paths:
        raise EngraverError("no page was written")
    return [page for path in paths for page in load_pages(path.read_bytes(), path.name)]


def musescore_pages(musicxml: bytes, style: MuseScoreStyle) -> list[np.ndarray]:
    """MusicXML engraved by MuseScore 3 in `style`: grey page images.

    The MusicXML import sets its own spacing (a style file given with -S is overridden), so
    the score is imported to MuseScore's own format first and its style block rewritten.
    """
    require(MUSESCORE)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "score.musicxml").write_bytes(musicxml)
        _run([MUSESCORE, "-o", "score.mscx", "score.musicxml"], folder)
        native = (folder / "score.mscx").read_text()
        start, end = native.find("<Style>") + len("<Style>"), native.find("</Style>")
        if start < len("<Style>") or end < start:
            raise EngraverError("MuseScore wrote no style block")
        names = set(re.findall(r"<(\w+)>", style.settings()))
        kept = re.sub(r"<(\w+)>[^<]*</\1>\s*",
                      lambda m: "" if m.group(1) in names else m.group(0), native[start:end])
        native = native[:start] + style.settings() + kept + native[end:]
        (folder / "score.mscx").write_text(native)
        _run([MUSESCORE, "-r", str(style.dpi), "-o", "page.png", "score.mscx"], folder)
        return _pages(folder, "page")


def lilypond_pages(musicxml: bytes, dpi: int = 150) -> list[np.ndarray]:
    """MusicXML engraved by LilyPond (through musicxml2ly): grey page images."""
    require(MUSICXML2LY, LILYPOND)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "score.musicxml").write_bytes(musicxml)
        _run([MUSICXML2LY, "-o", "score.ly", "score.musicxml"], folder)
        _run([LILYPOND, "--png", f"-dresolution={dpi}", "-o", "page", "score.ly"], folder)
        return _pages(folder, "page")
