"""Similar-track search: segment embeddings and hash codes, and the index that searches them.

A track is indexed as overlapping segments (SEGMENT_SECONDS long, SEGMENT_HOP_SECONDS apart), a
query is cut the same way, and tracks are ranked by their best-matching segments: a 10 s excerpt
finds its 30 s or 5 minute track.

    retriever = load_retriever()
    query = segments(clip, classifier, retriever)       # classifier: engine.genre.load_classifier()
    index = TrackIndex(track_ids, embeddings, codes)     # or TrackIndex.load(folder)
    index.add(track_id, segments(track_clip, classifier, retriever))
    index.search(query, 10)                              # [(track_id, score), ...], best first
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.audio import Clip
from engine.errors import IndexUnavailable, InvalidSettings, ModelUnavailable
from engine.files import fsync_folder, write_atomic
from engine.genre import (
    PATCH_SECONDS,
    ClipAnalysis,
    GenreClassifier,
    analyse,
    encoder_patches,
    patch_probabilities,
)
from engine.models.retrieval import RetrievalHead

SEGMENT_SECONDS = 10.0  # length of one indexed segment; a query this long or shorter is one
SEGMENT_HOP_SECONDS = 3.0  # indexed segments start this far apart
HASH_BITS = 64  # length of the hash codes (learned and LSH)
CODE_BYTES = HASH_BITS // 8  # a packed code
LSH_SEED = 64  # seeds the LSH baseline's random hyperplanes: the same on every machine
SHORTLIST = 100  # segments fetched per query segment before re-ranking and grouping by track
MODES = ("hash", "float", "lsh")  # learned codes (+ float re-rank), float embeddings, LSH codes
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "retrieval.pt"
CHECKPOINT_ENV = "MUSIC_STUDIO_RETRIEVAL_CHECKPOINT"  # overrides DEFAULT_CHECKPOINT
INDEX_VERSION = 1
_META = "index.json"  # written last: names the other files and their sha256
_FILES = ("codes.faiss", "embeddings.faiss", "lsh.faiss", "track_ids.bin")


@dataclass(frozen=True)
class Retriever:
    """The loaded search head, ready for inference."""

    head: RetrievalHead  # in eval mode, on the CPU
    encoder: str  # file name of the encoder checkpoint whose embeddings it reads
    metrics: dict  # figures stored with the weights


@dataclass(frozen=True)
class Segments:
    """A clip cut into overlapping segments, each with its search embedding and hash code."""

    starts: np.ndarray  # (n,) float64 seconds from the clip's start
    embeddings: np.ndarray  # (n, D) float32, L2-normalised
    codes: np.ndarray  # (n, CODE_BYTES) uint8: the HASH_BITS-bit codes, packed

    def __len__(self) -> int:
        return len(self.starts)


def default_checkpoint() -> Path:
    """The search head checkpoint used by default ($MUSIC_STUDIO_RETRIEVAL_CHECKPOINT overrides)."""
    return Path(os.environ.get(CHECKPOINT_ENV) or DEFAULT_CHECKPOINT)


def load_retriever(path: Path | None = None) -> Retriever:
    """Load the search head ($MUSIC_STUDIO_RETRIEVAL_CHECKPOINT or checkpoints/retrieval.pt).

    Raises:
        ModelUnavailable: when the checkpoint is missing or unreadable.
    """
    path = Path(path or default_checkpoint())
    head, encoder, metrics = RetrievalHead.from_checkpoint(path)
    return Retriever(head=head, encoder=encoder, metrics=metrics)


def patch_embeddings(
    samples: np.ndarray, classifier: GenreClassifier
) -> tuple[np.ndarray, np.ndarray]:
    """One encoder pass over half-overlapping patches (~1.5 s apart).

    Returns:
        (start of each patch in seconds (N,), encoder embeddings (N, dim) float32)
    """
    config = classifier.encoder.config
    patches, starts = encoder_patches(samples, config, hop_frames=config.patch_frames // 2)
    _, embeddings = patch_probabilities(patches, classifier)
    return starts, embeddings


def segment_starts(duration: float) -> np.ndarray:
    """Start of each segment of a clip: every SEGMENT_HOP_SECONDS, the last one ending at the
    clip's end; one segment at 0 for a clip of at most SEGMENT_SECONDS."""
    if duration <= SEGMENT_SECONDS:
        return np.zeros(1)
    starts = np.arange(0.0, duration - SEGMENT_SECONDS + 1e-6, SEGMENT_HOP_SECONDS)
    if starts[-1] + SEGMENT_SECONDS < duration - 1e-6:
        starts = np.append(starts, duration - SEGMENT_SECONDS)
    return starts


def pool_segments(
    embeddings: np.ndarray,
    patch_starts: np.ndarray,
    starts: np.ndarray,
    *,
    patch_seconds: float,
    seconds: float = SEGMENT_SECONDS,
) -> np.ndarray:
    """Mean patch embedding of each window [start, start + seconds].

    A window takes the patches whose centre lies inside it (the nearest patch when none does).

    Returns:
        (len(starts), dim) float32
    """
    centres = np.asarray(patch_starts) + patch_seconds / 2
    starts = np.asarray(starts, dtype=np.float64)[:, None]
    inside = (centres[None] >= starts - 1e-6) & (centres[None] <= starts + seconds + 1e-6)
    empty = ~inside.any(axis=1)
    if empty.any():
        nearest = np.abs(centres[None] - (starts[empty] + seconds / 2)).argmin(axis=1)
        inside[np.flatnonzero(empty), nearest] = True
    weights = inside / inside.sum(axis=1, keepdims=True)
    return (weights @ embeddings).astype(np.float32)


def embed(features: np.ndarray, retriever: Retriever) -> tuple[np.ndarray, np.ndarray]:
    """The head over segment features (mean encoder embeddings).

    Returns:
        (unit embeddings (n, D) float32, packed hash codes (n, CODE_BYTES) uint8)
    """
    with torch.inference_mode():
        embedding, relaxed = retriever.head(torch.from_numpy(np.asarray(features, np.float32)))
    return embedding.numpy(), pack_bits(relaxed.numpy())


def pack_bits(values: np.ndarray) -> np.ndarray:
    """Signs of (n, bits) values as packed codes (n, bits / 8) uint8: bit = value > 0."""
    return np.packbits(np.asarray(values) > 0, axis=1)


def segments(clip: Clip, classifier: GenreClassifier, retriever: Retriever) -> Segments:
    """Cut a clip into segments and compute each one's search embedding and hash code.

    Args:
        clip: audio from engine.audio.load.
        classifier: from engine.genre.load_classifier (its encoder's embeddings are the input).
        retriever: from load_retriever.

    Raises:
        ModelUnavailable: when the search head was trained for another encoder's embeddings.
    """
    return segments_from(search_analysis(clip, classifier), retriever)


def search_analysis(clip: Clip, classifier: GenreClassifier) -> ClipAnalysis:
    """The encoder pass search reads: half-overlapping patches (~1.5 s apart). Its genre and
    mood views (engine.genre.genres_from, engine.mood.moods_from) serve the library too."""
    return analyse(clip, classifier, hop_frames=classifier.encoder.config.patch_frames // 2)


def segments_from(analysis: ClipAnalysis, retriever: Retriever) -> Segments:
    """The segments of an analysis from `search_analysis` (no encoder runs again).

    Raises:
        ModelUnavailable: when the search head was trained for another encoder's embeddings.
    """
    dim = analysis.embeddings.shape[1]
    if dim != retriever.head.config.input_dim:
        raise ModelUnavailable(
            f"The search model reads {retriever.head.config.input_dim}-d embeddings of "
            f"{retriever.encoder}, but this encoder gives {dim}-d ones. "
            "Reinstall the studio's checkpoints or retrain the search model."
        )
    starts = segment_starts(analysis.duration)
    features = pool_segments(
        analysis.embeddings, analysis.starts, starts, patch_seconds=PATCH_SECONDS
    )
    embeddings, codes = embed(features, retriever)
    return Segments(starts=starts, embeddings=embeddings, codes=codes)


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise IndexUnavailable(
            "Similar-track search needs FAISS, which is not installed here: pip install faiss-cpu"
        ) from None
    # One query at a time is faster on one thread: FAISS's OpenMP threads spin against the
    # other work of a shared CPU (a 1M-code search took 216 ms on 2 threads, 0.6 ms on 1).
    faiss.omp_set_num_threads(1)
    return faiss


def lsh_planes(dim: int) -> np.ndarray:
    """The LSH baseline's HASH_BITS random hyperplanes (dim, HASH_BITS), seeded by LSH_SEED."""
    return np.random.default_rng(LSH_SEED).standard_normal((dim, HASH_BITS)).astype(np.float32)


class TrackIndex:
    """Tracks as segments, searched with FAISS: learned codes, float embeddings and LSH codes.

    Row i of every index is segment i; `track_ids[i]` names its track. Searches may run from
    several threads at once, but never beside `add`, `extend` or `remove`: the caller holds a
    lock around those.
    """

    def __init__(self, track_ids: np.ndarray, embeddings: np.ndarray, codes: np.ndarray) -> None:
        """Index segments given as arrays (what the library stores per segment).

        Args:
            track_ids: (n,) the track of each segment.
            embeddings: (n, D) float32 unit embeddings.
            codes: (n, CODE_BYTES) uint8 packed hash codes.

        Raises:
            ValueError: when the arrays disagree in length or shape.
            IndexUnavailable: when FAISS is not installed.
        """
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2:
            raise ValueError(f"embeddings must be (n, D), not {embeddings.shape}")
        faiss = _faiss()
        self._track_ids = np.empty(0, dtype=np.int64)
        self._float = faiss.IndexFlatIP(embeddings.shape[1])
        self._codes = faiss.IndexBinaryFlat(HASH_BITS)
        self._lsh = faiss.IndexBinaryFlat(HASH_BITS)
        self._planes = lsh_planes(embeddings.shape[1])
        self.stamp = ""  # what the index was built from (see save); "" when unknown
        self._append(track_ids, embeddings, codes)

    @classmethod
    def empty(cls, dim: int) -> TrackIndex:
        """An index with no tracks yet, for `dim`-d embeddings (the head's embedding_dim)."""
        return cls(np.empty(0), np.empty((0, dim)), np.empty((0, CODE_BYTES)))

    def _append(self, track_ids: np.ndarray, embeddings: np.ndarray, codes: np.ndarray) -> None:
        track_ids = np.asarray(track_ids, dtype=np.int64).reshape(-1)
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        n = len(track_ids)
        if embeddings.shape != (n, self.dim) or codes.shape != (n, CODE_BYTES):
            raise ValueError(
                f"{n} track ids need ({n}, {self.dim}) embeddings and ({n}, {CODE_BYTES}) codes, "
                f"not {embeddings.shape} and {codes.shape}"
            )
        self._float.add(embeddings)
        self._codes.add(codes)
        self._lsh.add(pack_bits(embeddings @ self._planes))
        self._track_ids = np.concatenate([self._track_ids, track_ids])

    @property
    def dim(self) -> int:
        """Size of the float embeddings."""
        return self._float.d

    def __len__(self) -> int:
        """Number of segments indexed."""
        return len(self._track_ids)

    @property
    def track_ids(self) -> np.ndarray:
        """(n,) int64: the track of each segment."""
        return self._track_ids.copy()

    @property
    def embeddings(self) -> np.ndarray:
        """(n, D) float32: each segment's embedding (a copy)."""
        return self._float.reconstruct_n(0, len(self)).reshape(len(self), self.dim)

    @property
    def codes(self) -> np.ndarray:
        """(n, CODE_BYTES) uint8: each segment's learned hash code (a copy)."""
        return self._codes.reconstruct_n(0, len(self)).reshape(len(self), CODE_BYTES)

    @property
    def nbytes(self) -> int:
        """Memory held by the index: float embeddings, both code sets and the track ids."""
        return len(self) * (4 * self.dim + 2 * CODE_BYTES + 8)

    def extend(self, track_ids: np.ndarray, embeddings: np.ndarray, codes: np.ndarray) -> None:
        """Index many segments at once (bulk loading, in chunks); their tracks must be new.

        Raises:
            ValueError: when the arrays disagree in length or shape.
        """
        self._append(track_ids, embeddings, codes)

    def add(self, track_id: int, track: Segments) -> None:
        """Index a track's segments, replacing any the track had."""
        self.remove(track_id)
        self._append(np.full(len(track), track_id), track.embeddings, track.codes)

    def remove(self, track_id: int) -> bool:
        """Drop a track's segments (the indexes are rebuilt: O(n)); False when it had none."""
        keep = self._track_ids != track_id
        if keep.all():
            return False
        track_ids, embeddings, codes = (
            self._track_ids[keep],
            self.embeddings[keep],
            self.codes[keep],
        )
        self._float.reset()
        self._codes.reset()
        self._lsh.reset()
        self._track_ids = np.empty(0, dtype=np.int64)
        self._append(track_ids, embeddings, codes)
        return True

    def search(
        self, query: Segments, k: int = 10, *, mode: str = "hash", rerank: bool = True
    ) -> list[tuple[int, float]]:
        """The k tracks closest to a query, ranked by their best-matching segments.

        Each query segment fetches a shortlist of segments; a track scores, per query segment,
        its best segment's similarity (cosine; for codes without re-rank 1 - 2 * Hamming / bits),
        and overall the mean over the query's segments.

        Args:
            query: from `segments`.
            k: tracks to return.
            mode: "hash" (learned codes), "float" (embeddings, exact) or "lsh" (the baseline:
                random-hyperplane codes of the same embeddings).
            rerank: for codes, re-rank the shortlist by float cosine similarity.

        Returns:
            [(track_id, score)], best first; fewer when the index holds fewer tracks.

        Raises:
            InvalidSettings: for an unknown mode or k < 1.
            IndexUnavailable: when the query comes from another search model than the index.
        """
        if mode not in MODES:
            raise InvalidSettings(f"Search mode {mode!r} is unknown; use one of {MODES}.")
        if k < 1:
            raise InvalidSettings(f"k = {k}: ask for at least one track.")
        if len(query) and query.embeddings.shape[1] != self.dim:
            raise IndexUnavailable(
                f"The index holds {self.dim}-d embeddings but the query has "
                f"{query.embeddings.shape[1]}-d ones: rebuild the index with this search model."
            )
        if not len(self) or not len(query):
            return []
        shortlist = min(len(self), max(SHORTLIST, 10 * k))
        while True:
            ids, similarity = self._shortlist(query, mode, shortlist, rerank)
            tracks, scores = _track_scores(self._track_ids[ids], similarity)
            if len(tracks) >= k or shortlist == len(self):
                break
            shortlist = min(len(self), 4 * shortlist)  # long tracks crowded the shortlist
        order = np.argsort(-scores, kind="stable")[:k]
        return [(int(tracks[i]), float(scores[i])) for i in order]

    def _shortlist(
        self, query: Segments, mode: str, size: int, rerank: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """(segment rows (m, size), similarity (m, size)) per query segment."""
        embeddings = np.ascontiguousarray(query.embeddings, dtype=np.float32)
        if mode == "float":
            similarity, ids = self._float.search(embeddings, size)
            return ids, similarity
        if mode == "hash":
            distances, ids = self._codes.search(np.ascontiguousarray(query.codes), size)
        else:
            distances, ids = self._lsh.search(pack_bits(embeddings @ self._planes), size)
        if not rerank:
            return ids, 1.0 - 2.0 * distances / HASH_BITS
        vectors = self._float.reconstruct_batch(ids.ravel()).reshape(*ids.shape, self.dim)
        return ids, np.einsum("mld,md->ml", vectors, embeddings)

    def save(self, folder: Path, *, stamp: str = "") -> None:
        """Write the index to a folder, each file atomically (temp name, fsync, rename); the
        file list with checksums is written last, so a crash never leaves a mixed index.

        Args:
            folder: where to write (created).
            stamp: what the index was built from (the library's catalog version), read back
                as `load(folder).stamp`.
        """
        faiss = _faiss()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        blobs = dict(
            zip(
                _FILES,
                (
                    faiss.serialize_index_binary(self._codes),
                    faiss.serialize_index(self._float),
                    faiss.serialize_index_binary(self._lsh),
                    self._track_ids.astype("<i8"),
                ),
                strict=True,
            )
        )
        for name, blob in blobs.items():
            write_atomic(folder / name, memoryview(np.ascontiguousarray(blob)).cast("B"))
        meta = {
            "version": INDEX_VERSION,
            "segments": len(self),
            "dim": self.dim,
            "bits": HASH_BITS,
            "lsh_seed": LSH_SEED,
            "stamp": stamp,
            "sha256": {name: hashlib.sha256(blob).hexdigest() for name, blob in blobs.items()},
        }
        write_atomic(folder / _META, json.dumps(meta, indent=1).encode())
        fsync_folder(folder)

    @classmethod
    def load(cls, folder: Path) -> TrackIndex:
        """Read an index written by `save`.

        Raises:
            IndexUnavailable: when files are missing, damaged or of another version; rebuild
                the index from the library's stored segments.
        """
        faiss = _faiss()
        folder = Path(folder)
        try:
            meta = json.loads((folder / _META).read_text())
            if meta.get("version") != INDEX_VERSION or meta.get("bits") != HASH_BITS:
                raise IndexUnavailable(
                    f"The search index in {folder} was written by another version of the "
                    "studio: rebuild it from the library."
                )
            blobs = {name: (folder / name).read_bytes() for name in _FILES}
            for name, blob in blobs.items():
                if hashlib.sha256(blob).hexdigest() != meta["sha256"][name]:
                    raise IndexUnavailable(
                        f"The search index file {folder / name} is damaged (its checksum does "
                        "not match): rebuild the index from the library."
                    )
            index = cls.empty(int(meta["dim"]))
            index._codes = faiss.deserialize_index_binary(_bytes(blobs["codes.faiss"]))
            index._float = faiss.deserialize_index(_bytes(blobs["embeddings.faiss"]))
            index._lsh = faiss.deserialize_index_binary(_bytes(blobs["lsh.faiss"]))
            index._track_ids = np.frombuffer(blobs["track_ids.bin"], dtype="<i8").astype(np.int64)
            index.stamp = str(meta.get("stamp", ""))
        except FileNotFoundError as err:
            raise IndexUnavailable(
                f"The search index in {folder} is missing {Path(err.filename).name}: rebuild it "
                "from the library."
            ) from None
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
            raise IndexUnavailable(
                f"The search index in {folder} could not be read ({err}): rebuild it from the "
                "library."
            ) from None
        sizes = {index._codes.ntotal, index._float.ntotal, index._lsh.ntotal}
        if sizes != {len(index), meta["segments"]} or index._float.d != meta["dim"]:
            raise IndexUnavailable(
                f"The search index files in {folder} disagree with each other: rebuild the "
                "index from the library."
            )
        return index


def _track_scores(tracks: np.ndarray, similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Score the tracks of a shortlist: per query segment their best segment's similarity
    (a track absent from a segment's shortlist gets that shortlist's lowest), then the mean.

    Args:
        tracks: (m, L) track of each shortlisted segment.
        similarity: (m, L) its similarity to the query segment.

    Returns:
        (track ids, scores), unsorted.
    """
    unique, inverse = np.unique(tracks, return_inverse=True)
    m = tracks.shape[0]
    best = np.full((m, len(unique)), -np.inf)
    rows = np.repeat(np.arange(m), tracks.shape[1])
    np.maximum.at(best, (rows, inverse.ravel()), similarity.ravel())
    floor = similarity.min(axis=1, keepdims=True)
    return unique, np.where(np.isinf(best), floor, best).mean(axis=0)


def _bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.uint8)
