"""The studio's command line (`python -m engine ...`); see DESIGN.md for the contract."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from tqdm import tqdm

from engine.errors import EngineError

if TYPE_CHECKING:
    from engine.genre import GenreClassifier
    from engine.library import Library, Track

EXIT_OK = 0
EXIT_SOME_FAILED = 1  # at least one input file could not be processed
EXIT_UNAVAILABLE = 2  # a model or tool the command needs is missing


def _quiet(files: Sequence[str]) -> bool:
    """No progress bar for a single file or when stderr is not a terminal."""
    return len(files) < 2 or not sys.stderr.isatty()


def _unavailable(err: Exception) -> int:
    """Say on stderr what the command is missing; its exit status."""
    print(f"error: {err}", file=sys.stderr)
    return EXIT_UNAVAILABLE


def _genres(args: argparse.Namespace) -> int:
    from engine.generate import styles
    from engine.genre import GENRES

    if args.json:
        print(json.dumps({"genres": list(GENRES), "styles": styles()}))
    else:
        print("\n".join(GENRES))
    return EXIT_OK


def _classify(args: argparse.Namespace) -> int:
    from engine.audio import load
    from engine.genre import classify, load_classifier

    try:
        classifier = load_classifier()
    except EngineError as err:
        return _unavailable(err)
    status = EXIT_OK
    for path in tqdm(args.files, desc="classify", unit="file", disable=_quiet(args.files)):
        try:
            prediction = classify(load(path), classifier)
        except EngineError as err:
            tqdm.write(f"{path}: {err}", file=sys.stderr)
            status = EXIT_SOME_FAILED
            continue
        if args.json:
            record = {
                "file": path,
                "genres": prediction.genres,
                "top": prediction.top,
                "segments": [
                    {"start": round(s.start, 2), "end": round(s.end, 2), "top": s.top}
                    for s in prediction.segments
                ],
                "warnings": list(prediction.warnings),
            }
            tqdm.write(json.dumps(record))
        else:
            ranked = sorted(prediction.genres.items(), key=lambda item: -item[1])[:3]
            summary = ", ".join(f"{name} {value:.2f}" for name, value in ranked)
            tqdm.write(f"{path}: {prediction.top} ({summary})")
            for warning in prediction.warnings:
                tqdm.write(f"{path}: warning: {warning}", file=sys.stderr)
    return status


def _generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from engine.errors import InvalidMidi, ModelUnavailable
    from engine.generate import GenerationSettings, generate

    settings = GenerationSettings(
        style=args.genre,
        seconds=args.seconds,
        bars=args.bars,
        tempo=args.tempo,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
        variations=args.variations,
        instrument=args.instrument,
        drums=args.drums,
        prompt=args.prompt,
        prompt_piece=args.prompt_piece,
        prompt_bars=args.prompt_bars,
        **({} if args.style_strength is None else {"style_strength": args.style_strength}),
    )
    bar = tqdm(total=100, desc="generate", unit="%", disable=not sys.stderr.isatty())

    def progress(fraction: float) -> None:
        bar.update(round(fraction * 100) - bar.n)

    try:
        result = generate(settings, render=args.wav is not None, progress=progress)
    except InvalidMidi as err:
        bar.close()
        print(f"{args.prompt or args.prompt_piece}: {err}", file=sys.stderr)
        return EXIT_SOME_FAILED
    except ModelUnavailable as err:
        bar.close()
        return _unavailable(err)
    except EngineError as err:
        bar.close()
        print(f"error: {err}", file=sys.stderr)
        return EXIT_SOME_FAILED
    bar.close()

    def numbered(path: Path, k: int) -> Path:
        return path if k == 0 else path.with_name(f"{path.stem}-{k + 1}{path.suffix}")

    status = EXIT_OK
    written = []
    for k, piece in enumerate(result.pieces):
        midi_path = numbered(Path(args.out), k)
        midi_path.parent.mkdir(parents=True, exist_ok=True)
        midi_path.write_bytes(piece.midi)
        record = {"midi": str(midi_path), "seconds": round(piece.seconds, 2), "seed": piece.seed,
                  "tempo": round(piece.tempo, 2), "draws": piece.draws}  # fmt: skip
        if args.wav is not None:
            if piece.audio is None:
                status = EXIT_UNAVAILABLE
            else:
                import soundfile

                wav_path = numbered(Path(args.wav), k)
                wav_path.parent.mkdir(parents=True, exist_ok=True)
                soundfile.write(wav_path, piece.audio, piece.sample_rate, subtype="PCM_16")
                record["wav"] = str(wav_path)
        written.append(record)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps({"style": result.settings.style, "pieces": written,
                          "seconds_taken": round(result.seconds_taken, 3),
                          "warnings": list(result.warnings)}))  # fmt: skip
    else:
        for record in written:
            files = " and ".join(str(record[k]) for k in ("midi", "wav") if k in record)
            print(f"wrote {files} ({record['seconds']} s at {record['tempo']} bpm, "
                  f"seed {record['seed']})")  # fmt: skip
    return status


def _compare(args: argparse.Namespace) -> int:
    from engine.compare import compare, load_music
    from engine.errors import RenderingUnavailable
    from engine.genre import load_classifier

    clips = []
    status = EXIT_OK
    for path in (args.a, args.b):
        try:
            clips.append(load_music(path))
        except RenderingUnavailable as err:
            print(f"{path}: {err}", file=sys.stderr)
            status = EXIT_UNAVAILABLE
        except EngineError as err:
            print(f"{path}: {err}", file=sys.stderr)
            status = max(status, EXIT_SOME_FAILED)
    if status != EXIT_OK:
        return status
    warnings = []
    try:
        classifier = load_classifier()
    except EngineError as err:
        classifier = None
        warnings.append(f"No embedding cosine: {err}")
    result = compare(*clips, classifier)
    warnings = list(result.warnings) + warnings
    if args.json:
        print(json.dumps({"a": args.a, "b": args.b, "seconds": round(result.seconds, 2),
                          **result.distances(), "warnings": warnings}))  # fmt: skip
    else:
        print(f"{args.a} vs {args.b} over {result.seconds:.1f} s:")
        for name, value in result.distances().items():
            print(f"  {name.replace('_', ' ')}: {'n/a' if value is None else value}")
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
    return status


def _open_library(args: argparse.Namespace) -> Library:
    from engine.library import Library

    return Library.open(args.library)


def _tag(args: argparse.Namespace) -> int:
    from engine.genre import load_classifier
    from engine.mood import require_mood_heads

    try:
        classifier = load_classifier()
        require_mood_heads(classifier.head_labels)
        library = _open_library(args) if args.listener else None
    except EngineError as err:
        return _unavailable(err)
    with library if library is not None else contextlib.nullcontext():
        return _tag_files(args, classifier, library)


def _tag_files(
    args: argparse.Namespace, classifier: GenreClassifier, library: Library | None
) -> int:
    """Tag each file (for the listener when a library is open); the exit status."""
    from engine import listeners
    from engine.audio import load
    from engine.mood import predict_moods

    calibrations = None
    if library is not None and library.listener(args.listener) is None:
        print(
            f"error: there is no listener {args.listener!r} in {library.home} "
            "(see `python -m engine listeners`).",
            file=sys.stderr,
        )
        return EXIT_SOME_FAILED
    status = EXIT_OK
    for path in tqdm(args.files, desc="tag", unit="file", disable=_quiet(args.files)):
        try:
            clip = load(path)
            crowd = predict_moods(clip, classifier)
        except EngineError as err:
            tqdm.write(f"{path}: {err}", file=sys.stderr)
            status = EXIT_SOME_FAILED
            continue
        tags, top = crowd.tags, crowd.top_tags
        if library is not None:
            if calibrations is None:
                calibrations = listeners.community_calibrations(library, list(tags))
            feedback = library.feedback(args.listener)
            personal = listeners.personal_moods(
                tags,
                args.listener,
                calibrations,
                answers=[(f.tag, f.accepted, f.crowd) for f in feedback],
                clip_answers={f.tag: f.accepted for f in feedback if f.clip == clip.sha256},
            )
            tags, top = personal.tags, personal.top_tags
        record = {
            "file": path,
            "tags": tags,
            "top_tags": top,
            "quadrant": crowd.quadrant,
            "valence": round(crowd.valence, 4),
            "arousal": round(crowd.arousal, 4),
            "listener": args.listener,
            "warnings": list(crowd.warnings),
        }
        if args.json:
            tqdm.write(json.dumps(record))
        else:
            tqdm.write(
                f"{path}: {', '.join(top)} ({crowd.quadrant}, valence "
                f"{crowd.valence:+.2f}, arousal {crowd.arousal:+.2f})"
            )
    return status


def _listeners(args: argparse.Namespace) -> int:
    try:
        with _open_library(args) as library:
            everyone = library.listeners()
    except EngineError as err:
        return _unavailable(err)
    rows = [
        {"id": x.listener_id, "name": x.name, "group": x.group, "simulated": x.simulated}
        for x in everyone
    ]
    if args.json:
        print(json.dumps({"listeners": rows}))
    else:
        for row in rows:
            print(
                f"{row['id']}\t{row['name']}\t{row['group']}"
                + ("\tsimulated" if row["simulated"] else "")
            )
    return EXIT_OK


def _community(args: argparse.Namespace) -> int:
    from engine.mood import MOOD_TAGS

    try:
        library = _open_library(args)
    except EngineError as err:
        return _unavailable(err)
    with library:
        if args.action == "export":
            for path in library.export_community(args.folder):
                print(f"wrote {path}")
            return EXIT_OK
        if args.action == "import":
            try:
                counts = library.import_community(args.folder, tags=MOOD_TAGS)
            except EngineError as err:
                print(f"{args.folder}: {err}", file=sys.stderr)
                return EXIT_SOME_FAILED
            print(json.dumps(counts))
            return EXIT_OK
        return _build_demo(library, corpus=False)


def _percent_bar(desc: str) -> tuple[tqdm, Callable[[float, str], None]]:
    """A progress bar in percent (on a terminal only) and the callback that moves it."""
    bar = tqdm(total=100, desc=desc, unit="%", disable=not sys.stderr.isatty())

    def progress(fraction: float, text: str) -> None:
        bar.set_postfix_str(text[:40], refresh=False)
        bar.update(round(fraction * 100) - bar.n)

    return bar, progress


def _build_demo(library: Library, *, corpus: bool) -> int:
    """Build the demo (see engine.demo.build_demo) with a progress bar; prints its summary."""
    from engine.demo import build_demo
    from engine.similar import describe, load_models

    try:
        models = load_models()
    except EngineError as err:
        return _unavailable(err)
    bar, progress = _percent_bar("demo")
    summary = build_demo(
        library, lambda clip: describe(clip, models), corpus=corpus, progress=progress
    )
    bar.close()
    _print_notices(library)
    print(json.dumps(summary))
    return EXIT_OK


def _print_notices(library: Library) -> None:
    for notice in library.take_notices():
        tqdm.write(f"warning: {notice}", file=sys.stderr)


def _track_record(track: Track) -> dict:
    return {
        "track_id": track.track_id,
        "title": track.title,
        "source": track.source,
        "genre": track.top_genre,
        "duration": round(track.duration, 2),
        "sha256": track.sha256,
        "added_at": round(track.added_at, 3),
        "analysed_by": track.analysed_by,
    }


def _library(args: argparse.Namespace) -> int:
    try:
        library = _open_library(args)
    except EngineError as err:
        return _unavailable(err)
    with library:
        if args.action == "list":
            return _library_list(library, args)
        if args.action == "delete":
            return _library_delete(library, args)
        if args.action == "demo":
            return _build_demo(library, corpus=True)
        if args.action == "reanalyse":
            return _library_reanalyse(library, args)
        return _library_add(library, args)


def _library_add(library: Library, args: argparse.Namespace) -> int:
    from engine.similar import add_file, load_models

    if not args.paths:
        print("error: name the audio, MIDI or score files to add.", file=sys.stderr)
        return EXIT_SOME_FAILED
    try:
        models = load_models()
    except EngineError as err:
        return _unavailable(err)
    status = EXIT_OK
    for path in tqdm(args.paths, desc="add", unit="file", disable=_quiet(args.paths)):
        try:
            added = add_file(library, path, models)
        except EngineError as err:
            tqdm.write(f"{path}: {err}", file=sys.stderr)
            status = EXIT_SOME_FAILED
            continue
        finally:
            _print_notices(library)
        track = added.track
        if not added.new:
            tqdm.write(
                f"{path}: already in the library (track {track.track_id}, {track.title!r})",
                file=sys.stderr,
            )
        elif args.json:
            tqdm.write(json.dumps({"file": path, **_track_record(track)}))
        else:
            tqdm.write(f"added {track.track_id}: {track.title} ({track.top_genre}) from {path}")
        sys.stdout.flush()  # a line printed is a track stored: never left in a buffer
    return status


def _library_reanalyse(library: Library, args: argparse.Namespace) -> int:
    """Describe anew the tracks earlier models described; a track that fails is reported and
    keeps its earlier analysis."""
    from engine.similar import load_models, reanalyse

    try:
        models = load_models()
    except EngineError as err:
        return _unavailable(err)
    bar, progress = _percent_bar("reanalyse")
    outcome = reanalyse(library, models, progress=progress)
    bar.close()
    for track, problem in outcome.failed:
        print(f"track {track.track_id} ({track.title}): {problem}", file=sys.stderr)
    _print_notices(library)
    summary = {"reanalysed": outcome.done, "failed": len(outcome.failed)}
    print(json.dumps(summary) if args.json else f"{outcome.done} tracks analysed again")
    return EXIT_SOME_FAILED if outcome.failed else EXIT_OK


def _library_list(library: Library, args: argparse.Namespace) -> int:
    tracks = library.tracks(args.title)
    if args.json:
        print(json.dumps({"tracks": [_track_record(t) for t in tracks]}))
    else:
        for track in tracks:
            print(f"{track.track_id}\t{track.title}\t{track.top_genre}\t{track.source}")
    return EXIT_OK


def _library_delete(library: Library, args: argparse.Namespace) -> int:
    status = EXIT_OK
    for raw in args.paths:
        if not raw.isdigit() or not library.delete_track(int(raw)):
            print(f"{raw}: there is no track with this id (see `library list`).", file=sys.stderr)
            status = EXIT_SOME_FAILED
            continue
        print(f"deleted {raw}")
    _print_notices(library)
    return status


def _search(args: argparse.Namespace) -> int:
    from engine.compare import load_music
    from engine.similar import load_models, query_segments, search

    try:
        models = load_models()
        library = _open_library(args)
    except EngineError as err:
        return _unavailable(err)
    with library:
        try:
            clip = load_music(args.file)
        except EngineError as err:
            print(f"{args.file}: {err}", file=sys.stderr)
            return EXIT_SOME_FAILED
        try:
            matches = search(library, query_segments(clip, models), k=args.k, genre=args.genre)
        except EngineError as err:
            _print_notices(library)
            print(f"error: {err}", file=sys.stderr)
            return EXIT_SOME_FAILED
        notices = library.take_notices()
    for notice in notices:
        print(f"warning: {notice}", file=sys.stderr)
    results = [
        {
            "track_id": m.track.track_id,
            "title": m.track.title,
            "score": round(m.score, 4),
            "genre": m.track.top_genre,
            "source": m.track.source,
        }
        for m in matches
    ]
    if args.json:
        print(json.dumps({"query": args.file, "results": results, "warnings": notices}))
    else:
        for rank, result in enumerate(results, 1):
            print(f"{rank}. {result['title']} ({result['genre']}, score {result['score']:.3f})")
    return EXIT_OK


def _read_score(args: argparse.Namespace) -> int:
    from pathlib import Path

    from engine.files import write_atomic
    from engine.score.assemble import midi_bytes, musicxml_bytes
    from engine.score.reader import load_reader
    from engine.score.reading import read_score

    try:
        reader = load_reader()
    except EngineError as err:
        return _unavailable(err)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(f"error: cannot write to {out} ({err.strerror}).", file=sys.stderr)
        return EXIT_SOME_FAILED
    status = EXIT_OK
    used: set[str] = set()
    for path in tqdm(args.files, desc="read", unit="file", disable=_quiet(args.files)):
        source = Path(path)
        try:
            reading = read_score(source, reader)
            stem, copy = source.stem, 2
            while stem in used:
                stem, copy = f"{source.stem}-{copy}", copy + 1
            used.add(stem)
            musicxml, midi = out / f"{stem}.musicxml", out / f"{stem}.mid"
            write_atomic(musicxml, musicxml_bytes(reading.score))
            write_atomic(midi, midi_bytes(reading.score))
        except EngineError as err:
            tqdm.write(f"{path}: {err}", file=sys.stderr)
            status = EXIT_SOME_FAILED
            continue
        except OSError as err:
            tqdm.write(f"{path}: cannot write its score to {out} ({err.strerror}).",
                       file=sys.stderr)
            status = EXIT_SOME_FAILED
            continue
        summary = reading.summary()
        if args.json:
            tqdm.write(json.dumps({"file": path, **{k: summary[k] for k in (
                "pages", "systems", "staves", "parts", "measures", "notes",
                "mean_confidence")}, "musicxml": str(musicxml), "midi": str(midi),
                "seconds": summary["seconds"], "warnings": summary["warnings"]}))
        else:
            tqdm.write(
                f"{path}: {summary['staves']} staves, {summary['parts']} parts, "
                f"{summary['measures']} bars, {summary['notes']} notes "
                f"(confidence {summary['mean_confidence']:.2f}) -> {musicxml}, {midi}"
            )
            for warning in summary["warnings"]:
                tqdm.write(f"{path}: warning: {warning}", file=sys.stderr)
    return status


def _match(args: argparse.Namespace) -> int:
    """match-score and match-audio: the query against the library's scored tracks."""
    from pathlib import Path

    from engine import score_search
    from engine.compare import load_music

    try:
        model = score_search.load_model()
        library = _open_library(args)
    except EngineError as err:
        return _unavailable(err)
    with library:
        try:
            with tqdm(total=1.0, desc="passages", disable=not sys.stderr.isatty(),
                      bar_format="{desc}: {percentage:3.0f}% {postfix}") as bar:
                index = score_search.passage_index(
                    library, model, progress=lambda share, text: (
                        bar.update(share - bar.n), bar.set_postfix_str(text)))
        except EngineError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_SOME_FAILED
        for reason in index.skipped:
            print(f"warning: left out of the search: {reason}", file=sys.stderr)
        try:
            if args.command == "match-score":
                source = Path(args.file)
                if not source.is_file():
                    raise EngineError(f"there is no file called {source.name} there.")
                hits = score_search.match_image(index, model, source.read_bytes(),
                                                name=source.name, k=args.k)
            else:
                hits = score_search.match_audio(index, model, load_music(args.file), k=args.k)
        except EngineError as err:
            print(f"{args.file}: {err}", file=sys.stderr)
            return EXIT_SOME_FAILED
    results = []
    for hit in hits:
        result = {"track_id": hit.track.track_id, "title": hit.track.title,
                  "source": hit.track.source, "score": round(hit.score, 4)}
        if args.command == "match-score":
            result |= {"start": round(hit.passage.start, 2), "end": round(hit.passage.end, 2)}
        else:
            result |= {"page": hit.page, "system": hit.system,
                       "measures": [_bar_number(n) for n in hit.measures]}
        results.append(result)
    if args.json:
        print(json.dumps({"query": args.file, "results": results}))
        return EXIT_OK
    for rank, (hit, result) in enumerate(zip(hits, results, strict=True), 1):
        where = (f"{hit.passage.start:.1f}-{hit.passage.end:.1f} s"
                 if args.command == "match-score" else
                 f"page {hit.page}, system {hit.system}, bars {'-'.join(hit.measures)}")
        print(f"{rank}. {result['title']}: {where} (score {result['score']:.3f})")
    return EXIT_OK


def _count(text: str) -> int:
    """A --k argument: a whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return int(text)


def _bar_number(number: str) -> int | str:
    """A bar number as a number where it is one (verovio's may be "12a", or empty)."""
    return int(number) if number.isdigit() else number


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subcommand per capability."""
    from engine.genre import GENRES

    parser = argparse.ArgumentParser(
        prog="python -m engine", description="Music Studio from the command line."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    genres = commands.add_parser("genres", help="list the genre names the classifier knows")
    genres.add_argument("--json", action="store_true", help="print JSON")
    genres.set_defaults(run=_genres)

    classify = commands.add_parser(
        "classify", help="tell the genre of audio files, overall and over time"
    )
    classify.add_argument("files", nargs="+", metavar="FILE", help="WAV, FLAC, OGG, Opus or MP3")
    classify.add_argument("--json", action="store_true", help="one JSON object per line per file")
    classify.set_defaults(run=_classify)

    generate = commands.add_parser(
        "generate", help="generate music in a style (see `genres --json` for the styles)"
    )
    generate.add_argument("--genre", required=True, help="style, e.g. folk or 'chinese folk'")
    length = generate.add_mutually_exclusive_group()
    length.add_argument("--seconds", type=float, default=None, help="length (default 30)")
    length.add_argument("--bars", type=int, default=None, help="length in bars instead")
    generate.add_argument("--seed", type=int, default=0, help="same seed, same music")
    generate.add_argument("--out", required=True, metavar="X.mid", help="MIDI file to write")
    generate.add_argument("--wav", default=None, metavar="X.wav", help="also render audio")
    generate.add_argument("--tempo", type=float, default=None, help="bpm (default: the style's)")
    generate.add_argument("--temperature", type=float, default=1.0)
    generate.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass")
    generate.add_argument(
        "--style-strength", type=float, default=None, help="0 none, 1 plain, more: more typical"
    )
    generate.add_argument("--variations", type=int, default=1, help="pieces (X.mid, X-2.mid...)")
    generate.add_argument("--instrument", type=int, default=None, help="GM program 0-127")
    generate.add_argument("--drums", default=None, help="a drum style under a melodic one")
    generate.add_argument("--prompt", default=None, metavar="FILE.mid", help="MIDI to continue")
    generate.add_argument("--prompt-piece", default=None, help="held-out piece id to continue")
    generate.add_argument("--prompt-bars", type=int, default=4, help="bars of the prompt used")
    generate.add_argument("--json", action="store_true", help="print a JSON summary")
    generate.set_defaults(run=_generate)

    compare = commands.add_parser(
        "compare", help="compare two pieces (audio or MIDI): spectral and embedding distances"
    )
    compare.add_argument("a", metavar="A", help="the original: audio or a .mid file")
    compare.add_argument("b", metavar="B", help="the piece to set against it, e.g. a generated one")
    compare.add_argument("--json", action="store_true", help="print one JSON object")
    compare.set_defaults(run=_compare)

    library_help = "studio data folder (default: $MUSIC_STUDIO_HOME or ./studio_data)"
    tag = commands.add_parser("tag", help="mood tags of audio files, optionally personalised")
    tag.add_argument("files", nargs="+", metavar="FILE", help="WAV, FLAC, OGG, Opus or MP3")
    tag.add_argument("--listener", default=None, metavar="ID", help="personalise for them")
    tag.add_argument("--library", default=None, metavar="DIR", help=library_help)
    tag.add_argument("--json", action="store_true", help="one JSON object per line per file")
    tag.set_defaults(run=_tag)

    people = commands.add_parser("listeners", help="the listeners moods can be personalised for")
    people.add_argument("--library", default=None, metavar="DIR", help=library_help)
    people.add_argument("--json", action="store_true", help="print JSON")
    people.set_defaults(run=_listeners)

    community = commands.add_parser(
        "community", help="import or export the listening community (CSV), or set up the demo"
    )
    community.add_argument("action", choices=["import", "export", "demo"])
    community.add_argument(
        "folder",
        nargs="?",
        default=".",
        metavar="DIR",
        help="folder of the CSV files (import, export)",
    )
    community.add_argument("--library", default=None, metavar="DIR", help=library_help)
    community.set_defaults(run=_community)

    library = commands.add_parser(
        "library",
        help="the studio library: add audio, MIDI or score files, list, delete, build the demo, "
        "or analyse the tracks again",
        description="add PATH...: add audio, MIDI or score files (MIDI is rendered; a MusicXML "
        "or MXL score is engraved and played, and the track keeps its score), one line per "
        "added track; list: the tracks; delete ID...: remove tracks; demo: add the demo "
        "library (about 320 rendered pieces, several minutes); reanalyse: describe anew, from "
        "their stored audio, the tracks that earlier models analysed (after a model update).",
    )
    library.add_argument("action", choices=["add", "list", "delete", "demo", "reanalyse"])
    library.add_argument("paths", nargs="*", metavar="PATH", help="files to add, ids to delete")
    library.add_argument("--library", default=None, metavar="DIR", help=library_help)
    library.add_argument("--title", default="", help="list: only titles containing this")
    library.add_argument("--json", action="store_true", help="print JSON")
    library.set_defaults(run=_library)

    search = commands.add_parser("search", help="find the library tracks that sound like a file")
    search.add_argument("file", metavar="FILE", help="audio or a .mid file")
    search.add_argument("--k", type=int, default=10, help="how many tracks (default 10)")
    search.add_argument("--genre", default=None, choices=GENRES, help="only tracks of this genre")
    search.add_argument("--library", default=None, metavar="DIR", help=library_help)
    search.add_argument("--json", action="store_true", help="print one JSON object")
    search.set_defaults(run=_search)

    read = commands.add_parser(
        "read-score",
        help="read sheet music (images or PDFs) into MusicXML and MIDI",
        description="Each FILE (PNG, JPEG, TIFF, BMP, WebP or PDF; a multi-page PDF is one "
        "score) is read into DIR/<stem>.musicxml and DIR/<stem>.mid.",
    )
    read.add_argument("files", nargs="+", metavar="FILE", help="page images or PDFs")
    read.add_argument("--out", required=True, metavar="DIR", help="folder for the results")
    read.add_argument("--json", action="store_true", help="one JSON object per line per file")
    read.set_defaults(run=_read_score)

    for name, what, helps in (
        ("match-score", "IMAGE", "find the library recordings that play a snippet of sheet "
         "music (a photo or scan of a few bars), and when"),
        ("match-audio", "FILE", "find the library scores that hold an excerpt of sound, "
         "and the page, system and bars"),
    ):
        match = commands.add_parser(name, help=helps, description=helps[0].upper() + helps[1:]
                                    + ". Only tracks that keep a score take part.")
        match.add_argument("file", metavar=what,
                           help="an image or PDF" if what == "IMAGE" else "audio or a .mid file")
        match.add_argument("--k", type=_count, default=10, help="how many tracks (default 10)")
        match.add_argument("--library", default=None, metavar="DIR", help=library_help)
        match.add_argument("--json", action="store_true", help="print one JSON object")
        match.set_defaults(run=_match)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status = args.run(args)
        sys.stdout.flush()  # a buffered last write fails here, not at exit
        return status
    except BrokenPipeError:
        # The reader of the output went away (`... | head`): stop quietly, as Unix tools do;
        # what is still buffered goes nowhere instead of failing again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_SOME_FAILED
