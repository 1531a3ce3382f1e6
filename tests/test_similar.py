"""The searchable library: adding (once), transactions, the index kept in step, rebuilt when
missing, damaged or out of date, a real kill during `library add`, search, the CLI and demo."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engine import genre, retrieval, similar
from engine.audio import load
from engine.errors import EngineError, InvalidSettings
from engine.library import INDEX_FOLDER, Library
from engine.retrieval import TrackIndex
from tests.conftest import encode_audio
from tests.helpers import (
    ROOT,
    needs_fluidsynth,
    run_engine,
    save_tiny_encoder,
    save_tiny_head,
    wait_for_exit,
)

RATE = 22_050


@pytest.fixture(scope="module")
def model_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment that points the engine at tiny random models."""
    folder = tmp_path_factory.mktemp("models")
    return {
        genre.CHECKPOINT_ENV: str(save_tiny_encoder(folder / "tiny.pt")),
        retrieval.CHECKPOINT_ENV: str(save_tiny_head(folder / "head.pt")),
    }


@pytest.fixture
def models(model_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> similar.SearchModels:
    for name, value in model_env.items():
        monkeypatch.setenv(name, value)
    return similar.load_models()


def music(seconds: float, seed: int) -> np.ndarray:
    """Noise shaped by a few seeded tones: distinct per seed."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    tones = sum(np.sin(2 * np.pi * f * t) for f in rng.uniform(100, 2000, 3))
    return (0.1 * tones + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def write_music(folder: Path, count: int, seconds: float = 12.0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        path = folder / f"piece_{n}.wav"
        path.write_bytes(encode_audio(music(seconds, n), RATE, "wav"))
        paths.append(path)
    return paths


def assert_consistent(home: Path) -> Library:
    """Every track has its audio and segments, no segment lacks its track, and the index
    (loaded or rebuilt) holds exactly the stored segments."""
    library = Library.open(home)
    tracks = {t.track_id: t for t in library.tracks()}
    track_ids, _, _ = library.stored_segments()
    assert set(track_ids.tolist()) == set(tracks)
    for track in tracks.values():
        assert library.audio_path(track.sha256).is_file()
    index = library.search_index()
    if tracks:
        assert sorted(index.track_ids.tolist()) == sorted(track_ids.tolist())
    return library


def test_add_search_and_never_twice(tmp_path: Path, models: similar.SearchModels) -> None:
    paths = write_music(tmp_path / "in", 3)
    with Library.open(tmp_path / "studio") as library:
        added = [similar.add_file(library, path, models) for path in paths]
        again = similar.add_file(library, paths[1], models)

        assert all(a.new for a in added) and not again.new
        assert again.track.track_id == added[1].track.track_id
        assert len(library.tracks()) == 3
        assert added[0].track.source == str(paths[0].resolve())
        assert added[0].track.genres and added[0].track.title == "piece 0"
        assert (tmp_path / "studio" / INDEX_FOLDER / "index.json").is_file()
        assert library.take_notices() == []  # a new library's index is made without a fuss

        query = similar.query_segments(models_clip(paths[2]), models)
        matches = similar.search(library, query, k=2)
        assert matches[0].track.track_id == added[2].track.track_id
        assert matches[0].score == pytest.approx(1.0, abs=1e-4)
        left_out = similar.search(library, query, k=5, exclude=added[2].track.track_id)
        assert added[2].track.track_id not in [m.track.track_id for m in left_out]
        assert len(left_out) == 2
        with pytest.raises(InvalidSettings):
            similar.search(library, query, k=0)
    assert_consistent(tmp_path / "studio").close()


def models_clip(path: Path):
    from engine.audio import load

    return load(path)


def test_a_track_stored_without_segments_becomes_searchable(
    tmp_path: Path, models: similar.SearchModels
) -> None:
    clip = models_clip(write_music(tmp_path / "in", 1)[0])
    with Library.open(tmp_path / "studio") as library:
        old_id, _ = library.add_clip(clip, title="from before search", source="x")
        assert library.search_index() is None and not library.is_searchable(clip.sha256)

        again = similar.add_clip(library, clip, title="other", source="y", models=models)

        assert not again.new and again.track.track_id == old_id
        assert library.is_searchable(clip.sha256)
        assert library.search_index().track_ids.tolist() == [old_id] * 2  # 12 s: two segments
        assert library.take_notices() == []
    assert_consistent(tmp_path / "studio").close()


def test_genre_filter(tmp_path: Path, models: similar.SearchModels) -> None:
    paths = write_music(tmp_path / "in", 3)
    with Library.open(tmp_path / "studio") as library:
        tracks = [similar.add_file(library, path, models).track for path in paths]
        query = library.track_segments(tracks[0].track_id)
        top = tracks[1].top_genre
        matches = similar.search(library, query, k=3, genre=top)
        assert matches and all(m.track.top_genre == top for m in matches)
        other = next(g for g in genre.GENRES if g not in {t.top_genre for t in tracks})
        assert similar.search(library, query, k=3, genre=other) == []


def test_an_empty_library_says_so(tmp_path: Path, models: similar.SearchModels) -> None:
    query = similar.query_segments(models_clip(write_music(tmp_path / "in", 1)[0]), models)
    with (
        Library.open(tmp_path / "studio") as library,
        pytest.raises(similar.EmptyLibrary, match="no tracks to search"),
    ):
        similar.search(library, query)


def test_a_failure_inside_an_add_stores_nothing_of_it(
    tmp_path: Path, models: similar.SearchModels
) -> None:
    paths = write_music(tmp_path / "in", 3)
    with Library.open(tmp_path / "studio") as library:
        similar.add_file(library, paths[0], models)
        broken = similar.describe(models_clip(paths[1]), models)
        bad_segments = retrieval.Segments(  # one start too many: the segment insert fails
            starts=np.append(broken.segments.starts, 99.0),
            embeddings=broken.segments.embeddings,
            codes=broken.segments.codes,
        )
        with pytest.raises(ValueError):
            library.add_clip(
                models_clip(paths[1]), title="broken", source="x", segments=bad_segments
            )
        similar.add_file(library, paths[2], models)
        assert [t.title for t in library.tracks()] == ["piece 2", "piece 0"]
    assert_consistent(tmp_path / "studio").close()


def test_delete_updates_the_index(tmp_path: Path, models: similar.SearchModels) -> None:
    paths = write_music(tmp_path / "in", 2)
    with Library.open(tmp_path / "studio") as library:
        first, second = (similar.add_file(library, p, models).track for p in paths)
        assert library.delete_track(first.track_id)
        assert not library.audio_path(first.sha256).exists()
        assert set(library.search_index().track_ids.tolist()) == {second.track_id}
    library = assert_consistent(tmp_path / "studio")
    assert library.take_notices() == []  # the saved index was in step: no rebuild
    library.close()


@pytest.mark.parametrize("damage", ["corrupt", "missing", "stale"])
def test_a_damaged_index_is_rebuilt_with_a_notice(
    tmp_path: Path, models: similar.SearchModels, damage: str
) -> None:
    paths = write_music(tmp_path / "in", 2)
    home = tmp_path / "studio"
    folder = home / INDEX_FOLDER
    with Library.open(home) as library:
        similar.add_file(library, paths[0], models)
        stale = TrackIndex.load(folder)
        similar.add_file(library, paths[1], models)
    if damage == "corrupt":
        (folder / "embeddings.faiss").write_bytes(b"not an index")
    elif damage == "missing":
        (folder / "codes.faiss").unlink()
    else:
        stale.save(folder, stamp=stale.stamp)  # as if a kill came before the index was saved
    library = assert_consistent(home)
    (notice,) = library.take_notices()
    expected = {"corrupt": "damaged", "missing": "missing codes.faiss", "stale": "out of date"}
    assert expected[damage] in notice and "rebuilt from the library's 2 indexed tracks" in notice
    library.close()
    reopened = assert_consistent(home)  # the rebuilt index was saved: no second rebuild
    assert reopened.take_notices() == []
    reopened.close()


@pytest.fixture
def updated_env(model_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The models after an update: another tiny encoder (same shapes, other weights)."""
    encoder = save_tiny_encoder(tmp_path / "updated.pt", seed=1)
    return {**model_env, genre.CHECKPOINT_ENV: str(encoder)}


@pytest.fixture
def updated(updated_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> similar.SearchModels:
    for name, value in updated_env.items():
        monkeypatch.setenv(name, value)
    return similar.load_models()


def test_tracks_of_earlier_models_are_analysed_again(
    tmp_path: Path, models: similar.SearchModels, updated: similar.SearchModels
) -> None:
    home = tmp_path / "studio"
    with Library.open(home) as library:
        tracks = [similar.add_file(library, p, models).track for p in write_music(tmp_path, 3)]
        assert {t.analysed_by for t in tracks} == {models.identity}
        assert similar.outdated_tracks(library, models) == []
        assert models.identity != updated.identity  # another encoder: other fingerprint
        assert similar.outdated_tracks(library, updated) == tracks
        before = library.track_segments(tracks[2].track_id)
        library.audio_path(tracks[2].sha256).write_bytes(b"OggS but no audio")  # damaged
        steps: list[float] = []

        outcome = similar.reanalyse(library, updated, progress=lambda f, _: steps.append(f))

        assert outcome.done == 2 and [t.track_id for t, _ in outcome.failed] == [3]
        assert "piece 2" in outcome.failed[0][1]
        assert steps == sorted(steps) and steps[-1] == 1.0
        for track in tracks[:2]:
            stored = library.track(track.track_id)
            expected = similar.describe(load(library.audio_path(track.sha256)), updated)
            assert stored.analysed_by == updated.identity and stored.genres == pytest.approx(
                expected.genres
            )
            assert stored.genres != pytest.approx(track.genres)  # the new model's, not the old
            np.testing.assert_allclose(
                library.track_segments(track.track_id).embeddings,
                expected.segments.embeddings,
                atol=1e-6,
            )
        kept = library.track(3)
        assert kept.analysed_by == models.identity and kept.genres == tracks[2].genres
        np.testing.assert_array_equal(library.track_segments(3).embeddings, before.embeddings)
        assert similar.outdated_tracks(library, updated) == [kept]
        assert library.take_notices() == []
    assert_consistent(home).close()  # the saved index holds the new segments


def test_an_interrupted_reanalysis_keeps_what_it_did(
    tmp_path: Path, models: similar.SearchModels, updated: similar.SearchModels
) -> None:
    def stop_at_the_second(fraction: float, _title: str) -> None:
        if fraction > 0:
            raise KeyboardInterrupt

    home = tmp_path / "studio"
    with Library.open(home) as library:
        for path in write_music(tmp_path, 3):
            similar.add_file(library, path, models)
        with pytest.raises(KeyboardInterrupt):
            similar.reanalyse(library, updated, progress=stop_at_the_second)
        assert library.analysis_counts() == {updated.identity: 1, models.identity: 2}
    assert_consistent(home).close()


def test_cli_reanalyse(tmp_path: Path, model_env: dict[str, str], updated_env) -> None:
    home = str(tmp_path / "studio")
    paths = [str(p) for p in write_music(tmp_path / "in", 2)]
    assert run_engine("library", "add", *paths, "--library", home, env=model_env).returncode == 0
    with Library.open(home) as library:
        library.audio_path(library.track(1).sha256).unlink()

    result = run_engine("library", "reanalyse", "--library", home, "--json", env=updated_env)

    assert result.returncode == 1 and json.loads(result.stdout) == {"reanalysed": 1, "failed": 1}
    assert result.stderr.startswith("track 1 (piece 0): its audio is missing from the library")
    listed = json.loads(run_engine("library", "list", "--library", home, "--json").stdout)
    by_id = {t["track_id"]: t["analysed_by"] for t in listed["tracks"]}
    assert by_id[1] != by_id[2] and by_id[2].endswith(f"+v{similar.ANALYSIS_VERSION}")
    again = run_engine("library", "reanalyse", "--library", home, "--json", env=model_env)
    assert json.loads(again.stdout) == {"reanalysed": 1, "failed": 0}  # track 2, now outdated


def test_cli_add_list_search(tmp_path: Path, model_env: dict[str, str]) -> None:
    paths = [str(p) for p in write_music(tmp_path / "in", 2)]
    bad = tmp_path / "in" / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00 not really a wav")
    home = str(tmp_path / "studio")

    added = run_engine("library", "add", paths[0], str(bad), paths[1], "--library", home,
                       env=model_env)  # fmt: skip
    assert added.returncode == 1
    assert f"{bad}: " in added.stderr and "Traceback" not in added.stderr
    assert [line.split(":")[0] for line in added.stdout.splitlines()] == ["added 1", "added 2"]

    again = run_engine("library", "add", paths[0], "--library", home, env=model_env)
    assert again.returncode == 0 and again.stdout == ""
    assert "already in the library (track 1" in again.stderr

    listed = json.loads(run_engine("library", "list", "--library", home, "--json").stdout)
    assert [t["title"] for t in listed["tracks"]] == ["piece 1", "piece 0"]
    assert {"track_id", "title", "source", "genre", "duration"} <= set(listed["tracks"][0])
    assert listed["tracks"][1]["source"] == str(Path(paths[0]).resolve())

    found = run_engine("search", paths[1], "--k", "2", "--library", home, "--json", env=model_env)
    assert found.returncode == 0, found.stderr
    result = json.loads(found.stdout)
    assert result["query"] == paths[1]
    assert [r["track_id"] for r in result["results"]][0] == 2
    assert set(result["results"][0]) >= {"track_id", "title", "score", "genre", "source"}


def test_cli_search_an_empty_library_and_a_bad_query(
    tmp_path: Path, model_env: dict[str, str]
) -> None:
    home = str(tmp_path / "studio")
    query = str(write_music(tmp_path / "in", 1)[0])
    empty = run_engine("search", query, "--k", "3", "--library", home, env=model_env)
    assert empty.returncode == 1 and "no tracks to search yet" in empty.stderr
    missing = run_engine("search", "nowhere.wav", "--k", "3", "--library", home, env=model_env)
    assert missing.returncode == 1 and missing.stderr.startswith("nowhere.wav: ")


def test_cli_search_without_models_stops_before_the_library(
    tmp_path: Path, model_env: dict[str, str]
) -> None:
    home = tmp_path / "studio"
    query = str(write_music(tmp_path / "in", 1)[0])
    env = {**model_env, retrieval.CHECKPOINT_ENV: str(tmp_path / "gone.pt")}
    result = run_engine("search", query, "--library", str(home), env=env)
    assert result.returncode == 2 and result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
    assert not home.exists()  # no library was opened, so none was created


@pytest.mark.parametrize("command", [("library",), ("search",)])
def test_cli_help(command: tuple[str, ...]) -> None:
    result = run_engine(*command, "--help")
    assert result.returncode == 0 and "--library" in result.stdout


def test_a_killed_library_add_loses_nothing_it_reported(
    tmp_path: Path, model_env: dict[str, str]
) -> None:
    paths = [str(p) for p in write_music(tmp_path / "in", 12, seconds=30.0)]
    home = tmp_path / "studio"
    process = subprocess.Popen(
        [sys.executable, "-m", "engine", "library", "add", *paths, "--library", str(home)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "CI": "1", **model_env},
    )
    reported = []
    try:
        for line in process.stdout:
            reported.append(int(line.split()[1].rstrip(":")))
            if len(reported) == 3:
                process.send_signal(signal.SIGKILL)
                break
    finally:
        process.kill()
        process.wait(timeout=60)
    assert len(reported) == 3 and process.returncode == -signal.SIGKILL

    library = assert_consistent(home)
    stored = {t.track_id for t in library.tracks()}
    assert set(reported) <= stored and len(stored) < len(paths)  # killed mid-batch
    library.close()
    # Adding the batch again completes it, each piece once.
    rerun = run_engine("library", "add", *paths, "--library", str(home), env=model_env)
    assert rerun.returncode == 0
    final = assert_consistent(home)
    assert len(final.tracks()) == len(paths)
    final.close()


def test_corpus_pieces_are_excerpts_on_their_instruments() -> None:
    import pretty_midi

    from engine import demo

    collection = demo.CorpusCollection(
        "test tunes", "irish folk", ("oneills1850",), r"^0001-0050\.abc$", 2, ((40,), (73,)), 120.0
    )
    pieces = demo.corpus_pieces(collection)
    assert len(pieces) == 2 and pieces[0].title.endswith("(irish folk)")
    assert "test tunes" in pieces[0].source
    data, name = pieces[1].data()
    score = pretty_midi.PrettyMIDI(io.BytesIO(data))
    assert name.endswith(".mid") and score.instruments[0].program == 73
    assert 0 < score.get_end_time() <= demo.EXCERPT_SECONDS + 1e-6


@needs_fluidsynth
def test_build_the_demo_library_with_a_tiny_corpus(
    tmp_path: Path, models: similar.SearchModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine import demo

    tiny = demo.CorpusCollection(
        "Bach chorales", "chorale", ("bach",), r"^bwv1\.6\.mxl$", 1, ((19,),), 80.0
    )
    monkeypatch.setattr(demo, "CORPUS", (tiny,))
    bundled = demo.demo_pieces()[:1]  # a bundled example: audio, no rendering
    monkeypatch.setattr(demo, "demo_pieces", lambda: bundled)
    steps = []
    with Library.open(tmp_path / "studio") as library:
        summary = demo.build_demo(
            library,
            lambda clip: similar.describe(clip, models),
            corpus=True,
            progress=lambda fraction, text: steps.append(fraction),
            listeners=5,
        )
        assert summary == {"tracks": 2, "skipped": 0, "listeners": 5}
        titles = [t.title for t in library.tracks()]
        assert "bwv1.6 (chorale)" in titles
        assert steps[-1] == 1.0 and steps == sorted(steps)
        again = demo.build_demo(library, lambda clip: similar.describe(clip, models), corpus=True)
        assert again["tracks"] == 0
    assert_consistent(tmp_path / "studio").close()


def sleeper(seconds: float) -> list[str]:
    """A stand-in for the demo build command: a process that lives `seconds`."""
    return [sys.executable, "-c", f"import time; time.sleep({seconds})"]


@pytest.fixture
def fresh_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Library]:
    """A new, empty library with the first-run demo build switched on."""
    from engine import demo

    monkeypatch.setenv(demo.FIRST_RUN_ENV, "1")
    with Library.open(tmp_path / "studio") as library:
        yield library


def test_the_first_run_starts_the_demo_build_once(fresh_library: Library) -> None:
    from engine import demo

    build = demo.start_first_run_build(fresh_library, command=sleeper(30))
    try:
        assert build is not None and build.running()
        assert build.pieces == demo.demo_piece_count()
        assert demo.demo_build(fresh_library.home) == build
        assert demo.start_first_run_build(fresh_library, command=sleeper(30)) is None
    finally:
        os.kill(build.pid, signal.SIGKILL)
    wait_for_exit(build.pid)
    assert not build.running()
    assert demo.start_first_run_build(fresh_library, command=sleeper(30)) is None  # never again


def test_the_first_run_build_tells_when_it_has_finished(fresh_library: Library) -> None:
    from engine import demo

    build = demo.start_first_run_build(fresh_library, command=sleeper(0))
    assert build is not None
    for _ in range(100):
        if not build.running():
            break
        time.sleep(0.1)
    assert not build.running()


def test_no_first_run_build_for_a_library_with_tracks(fresh_library: Library) -> None:
    from engine import demo

    fresh_library.add_track(title="mine", source="test", sha256="0" * 64, duration=1.0)
    assert demo.start_first_run_build(fresh_library, command=sleeper(30)) is None
    assert demo.demo_build(fresh_library.home) is None


def test_no_first_run_build_when_switched_off(tmp_path: Path) -> None:
    from engine import demo

    with Library.open(tmp_path / "off") as library:  # tests run with MUSIC_STUDIO_DEMO=0
        assert demo.start_first_run_build(library, command=sleeper(30)) is None
        assert demo.demo_build(library.home) is None


def test_a_first_run_build_that_cannot_start_says_so(
    fresh_library: Library, tmp_path: Path
) -> None:
    from engine import demo

    with pytest.raises(EngineError, match="demo library could not be started"):
        demo.start_first_run_build(fresh_library, command=[str(tmp_path / "no-such-program")])
    assert demo.demo_build(fresh_library.home) is None  # the next run tries again


def test_the_build_command_is_the_cli_at_low_priority(tmp_path: Path) -> None:
    from engine import demo

    command = demo.build_command(tmp_path)
    assert command[-6:] == ["-m", "engine", "library", "demo", "--library", str(tmp_path)]


def test_a_build_that_stopped_early_can_be_continued(fresh_library: Library) -> None:
    from engine import demo

    assert not demo.build_interrupted(fresh_library.home)  # never started
    build = demo.start_first_run_build(fresh_library, command=sleeper(30))
    assert not demo.build_interrupted(fresh_library.home)  # running
    os.kill(build.pid, signal.SIGKILL)
    wait_for_exit(build.pid)
    assert demo.build_interrupted(fresh_library.home)  # killed: no summary in its log

    summary = '{"tracks": 0, "skipped": 0, "listeners": 0}'
    done = demo.continue_build(fresh_library, command=[sys.executable, "-c", f"print('{summary}')"])
    assert demo.demo_build(fresh_library.home) == done
    wait_for_exit(done.pid)
    assert not demo.build_interrupted(fresh_library.home)  # finished: its summary is last
