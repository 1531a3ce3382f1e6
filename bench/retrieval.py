"""Benchmark similar-track search: genre mAP@10, piece identification, latency and memory at scale.

Side by side on the same segments: the learned 64-bit codes (with and without the float re-rank
of a shortlist), random-hyperplane LSH at 64 bits on the same embeddings (the baseline), the
learned float embeddings, and the studio encoder's own embeddings without the head.

- Genre: every mer4q val clip with a genre searches the other val clips with all its segments;
  mAP@10, a retrieved clip relevant when it shares a genre with the query.
- Piece identification: a library of material never trained on -- the mer4q val clips, one
  held-out rendered segment per held-out piece, and long real recordings (Debian game music,
  minutes each) -- and per track one 10 s excerpt at a random offset, altered (+-1 semitone,
  +-5% tempo, white noise at 20 dB SNR, or the same notes in another soundfont for rendered
  tracks; the alterations go round in turn). Recall@1 and @10 of the track.
- Scale: synthetic codes and embeddings (30 s tracks of 8 segments) at 10k ... 10M segments;
  p50/p99 of one 10 s query (one segment) and the index's memory.

The encoder's patch embeddings of library tracks and queries are cached
(~/.cache/music-studio/retrieval/bench), so a rerun with another head is quick.

    python -m bench.retrieval --out bench/results/retrieval.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from engine.audio import SAMPLE_RATE, from_array, load
from engine.errors import InvalidAudio
from engine.genre import PATCH_SECONDS, GenreClassifier, load_classifier
from engine.retrieval import (
    CODE_BYTES,
    SEGMENT_SECONDS,
    Retriever,
    Segments,
    TrackIndex,
    embed,
    load_retriever,
    patch_embeddings,
    pool_segments,
    segment_starts,
    segments,
)
from engine.train.augment import ALTERATIONS, alter, tempo_factor
from engine.train.dataset import (
    DEFAULT_DATA_DIR,
    BuildConfig,
    Example,
    default_cache_dir,
    load_audio,
    load_manifest,
    render_again,
    segment_plans,
)
from engine.train.retrieval import FONTS, encoder_digest

DEBIAN_MUSIC = default_cache_dir() / "debian" / "extracted" / "usr" / "share" / "games"
SCALE_SIZES = (10_000, 100_000, 1_000_000, 10_000_000)
SEGMENTS_PER_TRACK = 8  # synthetic tracks: 30 s, segments every 3 s
SEARCH_K = 10
# (name, TrackIndex mode, re-rank, features): the rows compared on the same segments
MODES = (
    ("learned codes + re-rank (shipped)", "hash", True, "head"),
    ("learned codes only", "hash", False, "head"),
    ("LSH 64 bits + re-rank", "lsh", True, "head"),
    ("LSH 64 bits only (baseline)", "lsh", False, "head"),
    ("learned float embeddings", "float", True, "head"),
    ("encoder embeddings, no head", "float", True, "encoder"),
)


@dataclass(frozen=True)
class LibraryTrack:
    """A track of the benchmark library."""

    key: str  # unique name, also of its caches (`Example.cache_name`, or "long-<file stem>")
    kind: str  # "mer4q val", "rendered held-out" or "long recording"
    genres: tuple[str, ...]  # for the genre figures (mer4q val only)
    example: Example | None  # the dataset example, None for a long recording
    path: Path | None  # the audio file of a long recording


def library_tracks(examples: list[Example], rendered: int, long_tracks: int) -> list[LibraryTrack]:
    """mer4q val clips, one held-out rendered segment per piece (up to `rendered`, spread over
    the sources), and up to `long_tracks` long recordings of at least 2.5 minutes."""
    rng = np.random.default_rng(0)
    tracks = [
        LibraryTrack(e.cache_name, "mer4q val", e.genres, e, None)
        for e in examples
        if e.source == "mer4q" and e.split == "val"
    ]
    pools: dict[str, list[Example]] = {}
    seen: set[tuple[str, str]] = set()
    for e in examples:
        if e.domain == "rendered" and e.split == "heldout" and (e.source, e.piece_id) not in seen:
            seen.add((e.source, e.piece_id))
            pools.setdefault(e.source, []).append(e)
    pools = {s: [pool[i] for i in rng.permutation(len(pool))] for s, pool in pools.items()}
    picked = 0
    while picked < rendered and any(pools.values()):
        for source in sorted(pools):
            if pools[source] and picked < rendered:
                e = pools[source].pop()
                tracks.append(LibraryTrack(e.cache_name, "rendered held-out", e.genres, e, None))
                picked += 1
    if long_tracks and DEBIAN_MUSIC.is_dir():
        import soundfile as sf

        files = sorted(p for p in DEBIAN_MUSIC.rglob("*") if p.suffix in (".ogg", ".opus"))
        for i in rng.permutation(len(files)):
            if sum(t.kind == "long recording" for t in tracks) >= long_tracks:
                break
            try:
                seconds = sf.info(str(files[i])).duration
            except (RuntimeError, sf.LibsndfileError):
                continue
            if 150 <= seconds <= 600:
                tracks.append(
                    LibraryTrack(f"long-{files[i].stem}", "long recording", (), None, files[i])
                )
    return tracks


def track_audio(track: LibraryTrack) -> np.ndarray:
    """The track's audio, mono float32 at SAMPLE_RATE."""
    if track.example is not None:
        return load_audio(track.example)
    return load(track.path).samples


def cached_patches(
    path: Path, make_audio, classifier: GenreClassifier
) -> tuple[np.ndarray, np.ndarray, float]:
    """(patch starts, encoder embeddings, duration) of some audio, cached at `path`."""
    if path.is_file():
        with np.load(path) as stored:
            return (
                stored["starts"],
                stored["embeddings"].astype(np.float32),
                float(stored["duration"]),
            )
    audio = make_audio()
    starts, embeddings = patch_embeddings(audio, classifier)
    duration = len(audio) / SAMPLE_RATE
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.npz")
    np.savez(temporary, starts=starts, embeddings=embeddings.astype(np.float16), duration=duration)
    temporary.replace(path)
    return starts, embeddings, duration


@dataclass(frozen=True)
class Query:
    """One piece-identification query."""

    track: int  # index of its library track
    alteration: str  # one of ALTERATIONS
    offset: float  # where the excerpt starts in the track, seconds


def plan_queries(tracks: list[LibraryTrack], durations: list[float]) -> list[Query]:
    """One 10 s excerpt per track at a seeded random offset; alterations in turn (another
    soundfont only for rendered tracks)."""
    rng = np.random.default_rng(1)
    audio_only = ALTERATIONS[:-1]
    queries, turn = [], {"real": 0, "rendered": 0}
    for i, (track, duration) in enumerate(zip(tracks, durations, strict=True)):
        domain = "rendered" if track.kind == "rendered held-out" else "real"
        choices = ALTERATIONS if domain == "rendered" else audio_only
        alteration = choices[turn[domain] % len(choices)]
        turn[domain] += 1
        room = max(0.0, duration - SEGMENT_SECONDS * tempo_factor(alteration))
        queries.append(Query(i, alteration, round(float(rng.uniform(0, room)), 2)))
    return queries


def query_audio(
    query: Query, track: LibraryTrack, plans: dict, data_dir: Path, cache_dir: Path
) -> np.ndarray:
    """The altered 10 s excerpt of a query."""
    rng = np.random.default_rng([2, query.track])
    lo = int(round(query.offset * SAMPLE_RATE))
    hi = lo + int(round(SEGMENT_SECONDS * tempo_factor(query.alteration) * SAMPLE_RATE))
    if query.alteration == "soundfont":
        assert track.example is not None
        others = [f for f in FONTS if f != track.example.soundfont]
        font = others[int(rng.integers(len(others)))]
        audio = render_again(
            track.example, plans, soundfont=font, data_dir=data_dir, cache_dir=cache_dir
        )
        return audio[lo:hi]
    return alter(track_audio(track)[lo:hi], query.alteration, rng=rng)


def to_segments(
    starts: np.ndarray, embeddings: np.ndarray, duration: float, retriever: Retriever
) -> tuple[Segments, np.ndarray]:
    """A clip's Segments as engine.retrieval.segments computes them, and the head-less
    (encoder) unit embeddings of the same segments."""
    offsets = segment_starts(duration)
    features = pool_segments(embeddings, starts, offsets, patch_seconds=PATCH_SECONDS)
    unit, codes = embed(features, retriever)
    plain = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    return Segments(offsets, unit, codes), plain.astype(np.float32)


def build_indexes(
    ids: list[int], learned: list[Segments], plain: list[np.ndarray]
) -> dict[str, TrackIndex]:
    """The same segments in a TrackIndex of head outputs and one of encoder embeddings."""
    track_ids = np.concatenate([np.full(len(s), i) for i, s in zip(ids, learned, strict=True)])
    head = TrackIndex(
        track_ids,
        np.concatenate([s.embeddings for s in learned]),
        np.concatenate([s.codes for s in learned]),
    )
    stacked = np.concatenate(plain)
    encoder = TrackIndex(track_ids, stacked, np.zeros((len(stacked), CODE_BYTES), np.uint8))
    return {"head": head, "encoder": encoder}


def as_query(segs: Segments, plain: np.ndarray, features: str) -> Segments:
    """The query as the index of `features` expects it."""
    if features == "head":
        return segs
    return Segments(segs.starts, plain, np.zeros((len(segs), CODE_BYTES), np.uint8))


def piece_identification(
    tracks: list[LibraryTrack],
    library: list[tuple[Segments, np.ndarray]],
    queries: list[Query],
    query_segments: list[tuple[Segments, np.ndarray]],
) -> dict:
    """Recall@1 and @10 per mode, overall, per alteration and per kind of track."""
    indexes = build_indexes(
        list(range(len(tracks))), [s for s, _ in library], [p for _, p in library]
    )
    figures = {}
    for name, mode, rerank, features in MODES:
        ranks = []
        for query, (segs, plain) in zip(queries, query_segments, strict=True):
            found = indexes[features].search(
                as_query(segs, plain, features), SEARCH_K, mode=mode, rerank=rerank
            )
            ids = [t for t, _ in found]
            ranks.append(ids.index(query.track) + 1 if query.track in ids else None)
        figures[name] = _recalls(ranks, queries, tracks)
    return figures


def _recalls(ranks: list[int | None], queries: list[Query], tracks: list[LibraryTrack]) -> dict:
    def recall(selected: list[int], at: int) -> float:
        return round(float(np.mean([ranks[i] is not None and ranks[i] <= at for i in selected])), 4)

    every = list(range(len(queries)))
    groups = {"overall": every}
    for alteration in ALTERATIONS:
        groups[alteration] = [i for i in every if queries[i].alteration == alteration]
    for kind in ("mer4q val", "rendered held-out", "long recording"):
        groups[kind] = [i for i in every if tracks[queries[i].track].kind == kind]
    return {
        group: {"queries": len(ids), "recall_at_1": recall(ids, 1), "recall_at_10": recall(ids, 10)}
        for group, ids in groups.items()
        if ids
    }


def genre_map(tracks: list[LibraryTrack], library: list[tuple[Segments, np.ndarray]]) -> dict:
    """mAP@10 per mode: each mer4q val clip with a genre searches the other val clips."""
    val = [i for i, t in enumerate(tracks) if t.kind == "mer4q val"]
    indexes = build_indexes(val, [library[i][0] for i in val], [library[i][1] for i in val])
    genres = {i: set(tracks[i].genres) for i in val}
    figures = {}
    for name, mode, rerank, features in MODES:
        precisions = []
        for i in val:
            relevant = {j for j in val if j != i and genres[i] & genres[j]}
            if not genres[i] or not relevant:
                continue
            segs, plain = library[i]
            found = indexes[features].search(
                as_query(segs, plain, features), SEARCH_K + 1, mode=mode, rerank=rerank
            )
            ranked = [t for t, _ in found if t != i][:SEARCH_K]
            precisions.append(average_precision(ranked, relevant, SEARCH_K))
        figures[name] = {
            "queries": len(precisions),
            "map_at_10": round(float(np.mean(precisions)), 4),
        }
    return figures


def average_precision(ranked: list[int], relevant: set[int], k: int) -> float:
    """AP@k: the mean of precision@i over the relevant hits in the top k, divided by
    min(k, number of relevant items)."""
    hits, total = 0, 0.0
    for i, item in enumerate(ranked[:k], start=1):
        if item in relevant:
            hits += 1
            total += hits / i
    return total / min(k, len(relevant))


def scale(sizes: tuple[int, ...], repeats: int, dim: int) -> list[dict]:
    """Latency of one 10 s query (one segment) and memory, on synthetic codes and embeddings
    grown in chunks to each size."""
    rng = np.random.default_rng(3)
    index = TrackIndex.empty(dim)
    seeds: list[tuple[np.ndarray, np.ndarray]] = []  # stored segments the queries start from
    rows = []
    for size in sizes:
        while len(index) < size:
            n = min(1_000_000, size - len(index))
            embeddings = rng.standard_normal((n, dim), dtype=np.float32)
            embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
            ids = len(index) // SEGMENTS_PER_TRACK + np.arange(n) // SEGMENTS_PER_TRACK
            codes = rng.integers(0, 256, (n, CODE_BYTES), dtype=np.uint8)
            index.extend(ids, embeddings, codes)
            seeds += list(zip(embeddings[:100], codes[:100], strict=True))
        timings = {}
        for label, mode, rerank, count in (
            ("hash", "hash", True, repeats),
            ("codes_only", "hash", False, repeats),
            ("lsh", "lsh", True, repeats),
            ("float", "float", True, max(20, repeats // 10)),
        ):
            times = []
            for q in range(count + 3):
                query = _synthetic_query(*seeds[int(rng.integers(len(seeds)))], rng)
                started = time.perf_counter()
                index.search(query, SEARCH_K, mode=mode, rerank=rerank)
                if q >= 3:  # after warm-up
                    times.append(time.perf_counter() - started)
            timings[label] = np.percentile(times, [50, 99]) * 1000
        tracks = size / SEGMENTS_PER_TRACK
        rows.append(
            {
                "n": size,
                "tracks": int(tracks),
                "p50_ms": round(float(timings["hash"][0]), 3),
                "p99_ms": round(float(timings["hash"][1]), 3),
                "bytes_per_track": round(index.nbytes / tracks, 1),
                "bytes_per_segment": round(index.nbytes / size, 1),
                "code_bytes_per_track": CODE_BYTES * SEGMENTS_PER_TRACK,
                "codes_only_p50_ms": round(float(timings["codes_only"][0]), 3),
                "lsh_p50_ms": round(float(timings["lsh"][0]), 3),
                "float_p50_ms": round(float(timings["float"][0]), 3),
                "float_p99_ms": round(float(timings["float"][1]), 3),
                "index_gib": round(index.nbytes / 2**30, 3),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _synthetic_query(embedding: np.ndarray, code: np.ndarray, rng: np.random.Generator) -> Segments:
    """A stored segment, slightly moved: its embedding plus noise, its code with 6 bits flipped."""
    moved = embedding[None] + 0.05 * rng.standard_normal((1, len(embedding)))
    moved = (moved / np.linalg.norm(moved)).astype(np.float32)
    bits = np.unpackbits(code[None], axis=1)
    bits[0, rng.choice(bits.shape[1], 6, replace=False)] ^= 1
    return Segments(np.zeros(1), moved, np.packbits(bits, axis=1))


def query_analysis_seconds(classifier: GenreClassifier, retriever: Retriever) -> float:
    """Median wall time of engine.retrieval.segments on a 10 s clip (the query's encoder pass)."""
    rng = np.random.default_rng(4)
    clip = from_array(0.1 * rng.standard_normal(int(SEGMENT_SECONDS * SAMPLE_RATE)), SAMPLE_RATE)
    segments(clip, classifier, retriever)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        segments(clip, classifier, retriever)
        times.append(time.perf_counter() - started)
    return round(float(np.median(times)), 3)


def main() -> None:
    """Run the three parts and print/write the JSON figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--cache", type=Path, default=default_cache_dir())
    parser.add_argument("--encoder", type=Path, default=Path("checkpoints/genre.pt"))
    parser.add_argument("--retriever", type=Path, default=Path("checkpoints/retrieval.pt"))
    parser.add_argument("--rendered", type=int, default=300, help="held-out rendered tracks")
    parser.add_argument("--long-tracks", type=int, default=8, help="long recordings")
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SCALE_SIZES))
    parser.add_argument("--repeats", type=int, default=300, help="queries timed per size")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (on a shared CPU 1 is fastest)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/retrieval.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    classifier = load_classifier(args.encoder)
    retriever = load_retriever(args.retriever)
    folder = args.cache / "retrieval" / "bench" / encoder_digest(args.encoder)
    tracks = library_tracks(load_manifest(args.cache), args.rendered, args.long_tracks)
    library_patches = []
    for track in tqdm(tracks, desc="library", unit="track"):
        path = folder / "library" / f"{track.key}.npz"
        try:
            library_patches.append(cached_patches(path, lambda t=track: track_audio(t), classifier))
        except InvalidAudio as err:
            raise SystemExit(f"{track.key}: {err}") from None
    queries = plan_queries(tracks, [d for _, _, d in library_patches])
    plans = segment_plans(BuildConfig(data_dir=args.data))
    query_patches = []
    for query in tqdm(queries, desc="queries", unit="query"):
        track = tracks[query.track]
        path = folder / "queries" / f"{track.key}-{query.alteration}-{query.offset}.npz"
        query_patches.append(
            cached_patches(
                path,
                lambda q=query, t=track: query_audio(q, t, plans, args.data, args.cache),
                classifier,
            )
        )
    library = [to_segments(*p, retriever) for p in library_patches]
    query_segments = [to_segments(*p, retriever) for p in query_patches]
    piece = piece_identification(tracks, library, queries, query_segments)
    genre = genre_map(tracks, library)
    shipped = MODES[0][0]
    figures = {
        "piece_id_recall_at_10": piece[shipped]["overall"]["recall_at_10"],
        "piece_id_recall_at_1": piece[shipped]["overall"]["recall_at_1"],
        "genre_map_at_10": genre[shipped]["map_at_10"],
        "targets": {"piece_id_recall_at_10": ">= 0.9", "p50_ms_at_1M": "<= 10"},
        "library": {
            "tracks": len(tracks),
            "segments": sum(len(s) for s, _ in library),
            "by_kind": {
                kind: sum(t.kind == kind for t in tracks)
                for kind in ("mer4q val", "rendered held-out", "long recording")
            },
            "hours": round(sum(d for _, _, d in library_patches) / 3600, 2),
        },
        "piece_identification": piece,
        "genre": genre,
        "query_analysis_seconds": query_analysis_seconds(classifier, retriever),
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": args.threads,
            "load_average_before_scale": os.getloadavg(),
        },
        "scale": scale(tuple(args.sizes), args.repeats, retriever.head.config.embedding_dim),
    }
    figures["machine"]["load_average_after_scale"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
