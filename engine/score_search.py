"""Search between sheet music and audio over the library's scored tracks.

Every track that keeps a score (`Library.score`) is cut into passages of two bars, one bar
apart, per system: the passage's image from the stored engraved page and its audio from the
track's stored audio, as the cross-modal model was trained on (`engine.passages`). Their
states (`Branch.nodes`) are kept per track on disk, keyed by the model, and the library's
embeddings (for a model with a graph encoder, over the k-NN graph of all its passages) are
kept on disk until the scored tracks change. A query (a photo of a few bars; an excerpt of
sound) is cut into windows, each embedded (joining the graph of its own modality,
`Branch.embed_among`), and the tracks are ranked by their best passage.

    model = load_model()
    index = passage_index(library, model)
    hits = match_image(index, model, image_bytes, k=5)   # -> tracks and where they play it
    hits = match_audio(index, model, clip, k=5)          # -> scores, page, system and bars
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine import audio
from engine.errors import EngineError, NoStaves
from engine.features import log_mel_db
from engine.files import write_atomic
from engine.library import Library, StoredScore, Track
from engine.models.crossmodal import CrossModalNet, Nodes
from engine.passages import (
    MARGIN_SPACES,
    SPACE_PX,
    Window,
    audio_input,
    bar_windows,
    sheet_input,
    system_strip,
)
from engine.scored import PAGE_SPACE_PX

CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "crossmodal.pt"
CHECKPOINT_ENV = "MUSIC_STUDIO_CROSSMODAL_CHECKPOINT"  # overrides CHECKPOINT
PASSAGES_FOLDER = "passages"  # under the library's home: one folder per model
JOINED_PREFIX = "joined-"  # the embeddings over the graph of every passage, named by the tracks
QUERY_SECONDS = 30.0  # of an audio query, the first this many seconds are matched
AUDIO_WINDOWS = (3.0, 5.0, 7.5)  # seconds of the windows an audio query is cut into
AUDIO_HOP = 1.5  # seconds between them
SHEET_WINDOWS = (24.0, 36.0, 54.0)  # staff spaces of a snippet's windows when no barline is found
BARLINE_INK = 0.85  # share of a staff's height a barline inks without a break
BARLINE_SLACK = 0.04  # how much shorter than the system's longest such run a barline may be
INK_LEVEL = 160  # grey below this is ink (thin lines are drawn anti-aliased)
BATCH = 256  # passages through a CNN at once

Progress = Callable[[float, str], None]


class NothingToMatch(EngineError):
    """A query with no music in it: silence, or a snippet without a staff."""


@dataclass(frozen=True)
class SearchModel:
    """The cross-modal model ready to use, and what names it."""

    net: CrossModalNet
    identity: str  # a digest of its checkpoint: passages stored for another model are not used


@dataclass(frozen=True)
class Passage:
    """Two bars of a scored track: where they are on its pages and when they sound."""

    track_id: int
    system: int  # index into the track's stored systems
    first: int  # bar indices within the system
    last: int
    start: float  # seconds into the track's audio
    end: float


@dataclass
class PassageIndex:
    """The library's passages with both modalities' states and embeddings."""

    passages: list[Passage]
    sheet: Nodes
    audio: Nodes
    sheet_embeddings: torch.Tensor  # (N, dim), the graph over every sheet passage
    audio_embeddings: torch.Tensor  # (N, dim), the graph over every audio passage
    tracks: dict[int, Track]
    scores: dict[int, StoredScore]
    skipped: list[str] = field(default_factory=list)  # scored tracks left out, and why


@dataclass(frozen=True)
class Hit:
    """A track that plays the query (or whose score holds it), at its best passage."""

    track: Track
    score: float  # cosine similarity of the best passage, <= 1
    passage: Passage
    page: int  # page of the passage's system, from 1
    system: int  # the system on that page, from 1
    measures: tuple[str, str]  # bar numbers of the passage's first and last bar


def load_model(path: Path | None = None) -> SearchModel:
    """The score search model ($MUSIC_STUDIO_CROSSMODAL_CHECKPOINT, else the shipped one).

    Raises:
        ModelUnavailable: when the checkpoint is missing or unreadable.
    """
    path = Path(path or os.environ.get(CHECKPOINT_ENV) or CHECKPOINT)
    net, _ = CrossModalNet.from_checkpoint(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return SearchModel(net.eval(), digest)


def nodes_of(branch: torch.nn.Module, inputs: np.ndarray) -> Nodes:
    """A branch's states of many inputs (N, H, W), in batches."""
    with torch.inference_mode():
        return Nodes.joined(*(
            branch.nodes(branch.features(torch.from_numpy(inputs[i:i + BATCH])[:, None]))
            for i in range(0, len(inputs), BATCH)))


def _track_passages(library: Library, track: Track, score: StoredScore, model: SearchModel
                    ) -> dict[str, np.ndarray]:
    """A scored track's passages and both modalities' states (float16), as stored."""
    import cv2

    pages = [cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) for path in score.pages]
    mel = log_mel_db(audio.load(library.audio_path(track.sha256)).samples)
    sheets, sounds, rows = [], [], []
    for index, system in enumerate(score.systems):
        if pages[system.page] is None:
            continue
        strip, bars = system_strip(pages[system.page], system, PAGE_SPACE_PX)
        for passage in bar_windows(bars):
            sheets.append(sheet_input(strip, passage.left, passage.right))
            sounds.append(audio_input(mel, passage.start, passage.end))
            rows.append([index, passage.first, passage.last, passage.start, passage.end])
    if not rows:
        return {"rows": np.zeros((0, 5))}
    net = model.net
    arrays = {"rows": np.array(rows, np.float64)}
    for name, branch, inputs in (("sheet", net.sheet, sheets), ("audio", net.audio, sounds)):
        nodes = nodes_of(branch, np.stack(inputs))
        arrays[f"{name}_dense"] = nodes.dense.numpy().astype(np.float16)
        if nodes.graph is not None:
            arrays[f"{name}_graph"] = nodes.graph.numpy().astype(np.float16)
    return arrays


def _stored_passages(library: Library, track: Track, score: StoredScore,
                     model: SearchModel) -> dict[str, np.ndarray]:
    """A track's passages from their file, made and written first when missing."""
    path = library.home / PASSAGES_FOLDER / model.identity / f"{track.sha256}.npz"
    if path.is_file():
        try:
            with np.load(path) as stored:
                return dict(stored)
        except (OSError, ValueError):
            pass  # a damaged file is made again
    arrays = _track_passages(library, track, score, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_atomic(path, buffer.getvalue())
    return arrays


def _forget_deleted(folder: Path, kept: set[str]) -> None:
    """Remove the passage files of tracks the library no longer holds."""
    for path in folder.glob("*.npz"):
        if not path.name.startswith(JOINED_PREFIX) and path.stem not in kept:
            path.unlink(missing_ok=True)


def _joined(folder: Path, shas: list[str], model: SearchModel, sheet: Nodes, sound: Nodes,
            progress: Progress | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Both modalities' embeddings over the graph of every passage of the tracks `shas`: read
    from their file when these tracks were joined before, else joined and written (the one
    file kept), so a search of an unchanged library does not build its graph again."""
    digest = hashlib.sha256("".join(shas).encode()).hexdigest()[:16]
    path = folder / f"{JOINED_PREFIX}{digest}.npz"
    try:
        with np.load(path) as stored:
            embeddings = torch.from_numpy(stored["sheet"]), torch.from_numpy(stored["audio"])
        if len(embeddings[0]) == len(sheet) and len(embeddings[1]) == len(sound):
            return embeddings
    except (OSError, ValueError, KeyError):  # none yet, or damaged: joined again
        pass
    if progress:
        progress(0.95, f"Joining {len(sheet)} passages")
    with torch.inference_mode():
        embeddings = (model.net.sheet.embed_library(sheet), model.net.audio.embed_library(sound))
    for old in folder.glob(f"{JOINED_PREFIX}*.npz"):
        old.unlink(missing_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, sheet=embeddings[0].numpy(), audio=embeddings[1].numpy())
    write_atomic(path, buffer.getvalue())
    return embeddings


def passage_index(library: Library, model: SearchModel, *,
                  progress: Progress | None = None) -> PassageIndex:
    """The passages of every scored track of the library, embedded over their graphs.

    Raises:
        NothingToMatch: when no track keeps a score, or their scores hold no passage.
    """
    ids = library.scored_track_ids()
    if not ids:
        raise NothingToMatch("No track in the library keeps a score yet: add MusicXML, MXL "
                             "or MIDI files to the library first.")
    passages: list[Passage] = []
    parts: dict[str, list[np.ndarray]] = {}
    tracks, scores = {}, {}
    skipped: list[str] = []
    kept: set[str] = set()  # the digests of the scored tracks' audio: their files are kept
    for number, track_id in enumerate(ids):
        track, score = library.track(track_id), library.score(track_id)
        if track is None or score is None:
            continue
        kept.add(track.sha256)
        if progress:
            progress(number / len(ids), f"Passages of {track.title}")
        try:
            arrays = _stored_passages(library, track, score, model)
        except EngineError as err:  # e.g. its audio file is gone: the others are searched
            skipped.append(f"{track.title}: {err}")
            continue
        if not len(arrays["rows"]):
            continue
        tracks[track_id], scores[track_id] = track, score
        passages += [Passage(track_id, int(r[0]), int(r[1]), int(r[2]), float(r[3]), float(r[4]))
                     for r in arrays["rows"]]
        for key, value in arrays.items():
            parts.setdefault(key, []).append(value)
    if not passages:
        raise NothingToMatch("The library's scores hold no passage to match."
                             + "".join(f" {reason}." for reason in skipped))

    def nodes(name: str) -> Nodes:
        graph = parts.get(f"{name}_graph")
        return Nodes(torch.from_numpy(np.concatenate(parts[f"{name}_dense"]).astype(np.float32)),
                     None if graph is None
                     else torch.from_numpy(np.concatenate(graph).astype(np.float32)))

    sheet, sound = nodes("sheet"), nodes("audio")
    folder = library.home / PASSAGES_FOLDER / model.identity
    _forget_deleted(folder, kept)
    shas = [track.sha256 for track in tracks.values()]
    sheet_embeddings, audio_embeddings = _joined(folder, shas, model, sheet, sound, progress)
    if progress:
        progress(1.0, f"{len(passages)} passages of {len(tracks)} scores")
    return PassageIndex(passages, sheet, sound, sheet_embeddings, audio_embeddings, tracks,
                        scores, skipped)


def index_stamp(library: Library, model: SearchModel) -> str:
    """What a passage index is current for: the model and the scored tracks."""
    return json.dumps([model.identity, library.scored_track_ids()])


# ------------------------------------------------------------------------------------
# Queries


def _longest_runs(ink: np.ndarray) -> np.ndarray:
    """Per column of a boolean image, its longest run of ink from top to bottom, in rows."""
    run = np.zeros(ink.shape[1], np.int32)
    longest = run.copy()
    for row in ink:
        run = (run + 1) * row
        np.maximum(longest, run, out=longest)
    return longest


def barlines(image: np.ndarray, staves: list[tuple[float, float]], space: float,
             start: float = 0.0) -> list[float]:
    """x of the barlines crossing every staff of a system (grey image; its staves' top and
    bottom rows; the staff space in pixels; x where the staves start), left to right.

    A barline inks a column without a break over at least BARLINE_INK of every staff's
    height. Of the columns that do, those whose run falls clearly short of the system's
    longest one after its start (stems across a single staff) are not barlines; a time
    signature's digits break the run between them. Thick and double lines count once.
    """
    runs = np.ones(image.shape[1])
    for top, bottom in staves:
        block = image[int(round(top)):int(round(bottom)) + 1] < INK_LEVEL
        runs = np.minimum(runs, _longest_runs(block) / max(len(block), 1))
    xs = np.flatnonzero(runs >= BARLINE_INK)
    if not len(xs):
        return []
    groups = np.split(xs, np.flatnonzero(np.diff(xs) > space) + 1)
    peaks = np.array([runs[group].max() for group in groups])
    inside = [peak for group, peak in zip(groups, peaks, strict=True)
              if group.mean() > start + 2 * space]  # not the line that opens the system
    floor = max(BARLINE_INK, max(inside, default=1.0) - BARLINE_SLACK)
    return [float(group.mean()) for group, peak in zip(groups, peaks, strict=True)
            if peak >= floor]


@dataclass(frozen=True)
class SystemStrip:
    """A system of a page cut out as the library's are: MARGIN_SPACES spaces above and below
    its staves and a space left and right, at SPACE_PX pixels per staff space."""

    image: np.ndarray  # grey
    staves: list[tuple[float, float]]  # each staff's top and bottom row
    barlines: list[float]  # x, found on the page at its own resolution

    def bar_edges(self) -> list[float]:
        """x of the bar edges: where the staves start, every barline after that, and where
        the staves end when the last bar has no barline of its own."""
        left, right = SPACE_PX, self.image.shape[1] - SPACE_PX
        edges = [left] + [x for x in self.barlines if left + 2 * SPACE_PX < x]
        if right - edges[-1] > 3 * SPACE_PX:
            edges.append(right)
        return edges

    def windows(self) -> list[Window]:
        """Windows over the system for a query: its bars two at a time, as the library's
        passages are, where barlines are found, else windows of several widths."""
        edges = self.bar_edges()
        if len(edges) >= 3:
            return bar_windows([[a, b, 0.0, 0.0] for a, b in zip(edges, edges[1:], strict=False)])
        left, right = SPACE_PX, self.image.shape[1] - SPACE_PX
        windows = [Window(0, 0, left, right, 0.0, 0.0)]
        for spaces in SHEET_WINDOWS:
            width = spaces * SPACE_PX
            if width >= right - left:
                continue
            starts = np.arange(left, right - width + 1, width / 2)
            windows += [Window(0, 0, float(x), float(x + width), 0.0, 0.0) for x in starts]
        return windows


def system_strips(page: np.ndarray) -> list[SystemStrip]:
    """A straightened grey page's systems, top to bottom."""
    import cv2

    from engine.score.staves import find_staves

    staves = find_staves(page)
    strips = []
    for system in sorted({staff.system for staff in staves}):
        members = [s for s in staves if s.system == system]
        space = float(np.median([s.spacing for s in members]))
        top = max(min(s.top for s in members) - MARGIN_SPACES * space, 0)
        bottom = min(max(s.bottom for s in members) + MARGIN_SPACES * space, page.shape[0])
        left = max(min(s.left for s in members) - space, 0)
        right = min(max(s.right for s in members) + space, page.shape[1])
        crop = page[int(top):int(bottom), int(left):int(right)]
        rows = [(s.top - int(top), s.bottom - int(top)) for s in members]
        scale = SPACE_PX / space
        image = cv2.resize(crop, (max(round(crop.shape[1] * scale), 1),
                                  max(round(crop.shape[0] * scale), 1)),
                           interpolation=cv2.INTER_AREA)
        found = barlines(crop, rows, space, start=min(s.left for s in members) - int(left))
        strips.append(SystemStrip(image, [(a * scale, b * scale) for a, b in rows],
                                  [x * scale for x in found]))
    return strips


def sheet_queries(data: bytes, name: str = "snippet") -> np.ndarray:
    """A photo or scan of a few bars (or systems) -> the model's inputs of its windows.

    Raises:
        InvalidScore: when it is not an image or PDF the studio reads.
        NoStaves: when no staff of five lines is found in it.
    """
    from engine.score.pages import load_pages
    from engine.score.staves import straighten

    inputs = []
    for page in load_pages(data, name)[:4]:
        for strip in system_strips(straighten(page)[0]):
            inputs += [sheet_input(strip.image, found.left, found.right)
                       for found in strip.windows()]
    if not inputs:
        raise NoStaves(f"No staff of five lines was found in {name}. Photograph or scan a few "
                       "bars of printed sheet music, straight on and sharp.")
    return np.stack(inputs)


def audio_queries(clip: audio.Clip) -> np.ndarray:
    """An excerpt of sound -> the model's inputs of its windows (its first QUERY_SECONDS).

    Raises:
        NothingToMatch: when it is silent.
    """
    samples = clip.samples[: int(QUERY_SECONDS * clip.sample_rate)]
    if float(np.abs(samples).max(initial=0.0)) < audio.SILENCE_PEAK:
        raise NothingToMatch(f"{clip.name} is silent: there is no music in it to match.")
    mel = log_mel_db(samples, sample_rate=clip.sample_rate)
    seconds = len(samples) / clip.sample_rate
    spans = [(0.0, seconds)]
    for length in AUDIO_WINDOWS:
        if length < seconds:
            spans += [(float(s), float(s) + length)
                      for s in np.arange(0.0, seconds - length + 1e-6, AUDIO_HOP)]
    return np.stack([audio_input(mel, start, end) for start, end in spans])


def _ranked(index: PassageIndex, similarity: torch.Tensor, k: int) -> list[Hit]:
    """The k tracks with the best passages (similarity: (windows, passages))."""
    best = similarity.max(dim=0).values.numpy()
    hits: list[Hit] = []
    seen: set[int] = set()
    for position in np.argsort(-best, kind="stable"):
        passage = index.passages[position]
        if passage.track_id in seen:
            continue
        seen.add(passage.track_id)
        system = index.scores[passage.track_id].systems[passage.system]
        hits.append(Hit(index.tracks[passage.track_id], float(best[position]), passage,
                        system.page + 1, system.system + 1,
                        (system.bars[passage.first].number, system.bars[passage.last].number)))
        if len(hits) == k:
            break
    return hits


def match_image(index: PassageIndex, model: SearchModel, data: bytes, *, name: str = "snippet",
                k: int = 10) -> list[Hit]:
    """The k scored tracks that play a snippet of sheet music, each where it plays it.

    Raises:
        InvalidScore, NoStaves: as `sheet_queries`.
    """
    branch = model.net.sheet
    with torch.inference_mode():
        queries = branch.embed_among(nodes_of(branch, sheet_queries(data, name)), index.sheet)
        return _ranked(index, queries @ index.audio_embeddings.T, k)


def match_audio(index: PassageIndex, model: SearchModel, clip: audio.Clip, *,
                k: int = 10) -> list[Hit]:
    """The k scores that hold an excerpt of sound, each with the page, system and bars.

    Raises:
        NothingToMatch: when the clip is silent.
    """
    branch = model.net.audio
    with torch.inference_mode():
        queries = branch.embed_among(nodes_of(branch, audio_queries(clip)), index.audio)
        return _ranked(index, queries @ index.sheet_embeddings.T, k)
