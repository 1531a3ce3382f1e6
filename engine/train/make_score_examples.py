"""Engrave the bundled example pages of sheet music (examples/scores/), from pieces the score
reader never trained on (the test split of engine.train.omr_data).

    python -m engine.train.make_score_examples --out examples/scores
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import music21
import numpy as np
from PIL import Image

from engine.score.assemble import musicxml_bytes
from engine.score.engrave import Layout, engrave, rasterise
from engine.train.degrade import blur, jpeg, noise, paper_texture, perspective, rotate, uneven_light
from engine.train.omr_data import split_of

# (music21 corpus path, file name, title, layout, photographed?, pages)
EXAMPLES = (
    ("bach/bwv342.mxl", "bach-chorale-bwv342.png",
     "Bach: chorale BWV 342 (four voices, a clean engraving)",
     Layout(font="Leland", scale=48, header=False), False, 1),
    ("ryansMammoth/TurnpikeReel.abc", "turnpike-reel-photo.jpg",
     "Ryan's Mammoth Collection: Turnpike Reel (a phone photo)",
     Layout(font="Bravura", scale=55, page_height=1600, header=False), True, 1),
    ("haydn/opus1no1/movement1.mxl", "haydn-quartet-op1-no1.pdf",
     "Haydn: string quartet Op. 1 No. 1, first movement (two PDF pages)",
     Layout(font="Leipzig", scale=38, header=False), False, 2),
)


def photograph(page: np.ndarray, seed: int) -> np.ndarray:
    """A page as a phone sees it: turned, askew, unevenly lit, on grey paper, a little soft."""
    rng = np.random.default_rng(seed)
    out = np.pad(page, 60, constant_values=255)
    out = perspective(rotate(out, 2.2), 0.02, rng)
    out = paper_texture(out, 0.12, rng)
    out = uneven_light(out, 0.35, rng)
    return jpeg(noise(blur(out, 0.7), 4, rng), 80)


def main() -> None:
    """Write the example pages and their index."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("examples/scores"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    index = []
    for number, (path, name, title, layout, photo, pages) in enumerate(EXAMPLES):
        assert split_of(f"m21/{path}") == "test", f"{path} is not held out"
        score = music21.corpus.parse(path)
        if isinstance(score, music21.stream.Opus):
            score = score.scores[0]
        svgs = engrave(musicxml_bytes(score).decode(), layout)[:pages]
        images = [rasterise(svg, zoom=1.6) for svg in svgs]
        if photo:
            images = [photograph(image, number) for image in images]
        target = args.out / name
        if name.endswith(".pdf"):
            frames = [Image.fromarray(image) for image in images]
            buffer = io.BytesIO()
            frames[0].save(buffer, format="PDF", save_all=True, append_images=frames[1:],
                           resolution=150)
            target.write_bytes(buffer.getvalue())
        else:
            Image.fromarray(images[0]).save(target, quality=85)
        index.append({"file": name, "title": title, "source": f"music21 corpus {path}"})
        print(f"{target}: {len(images)} page(s)")
    (args.out / "index.json").write_text(json.dumps(index, indent=1) + "\n")


if __name__ == "__main__":
    main()
