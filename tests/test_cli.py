"""The command line, run as a person runs it: `python -m engine ...` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.audio import load
from engine.genre import CHECKPOINT_ENV, GENRES
from engine.library import Library
from engine.mood import MOOD_TAGS, QUADRANTS
from tests.helpers import ROOT, save_tiny_encoder, save_tiny_mood_encoder
from tests.helpers import run_engine as run


@pytest.fixture(scope="module")
def tiny_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment pointing the CLI at a tiny random genre checkpoint."""
    path = save_tiny_encoder(tmp_path_factory.mktemp("model") / "genre.pt")
    return {CHECKPOINT_ENV: str(path)}


def test_genres_json_lists_the_taxonomy() -> None:
    result = run("genres", "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["genres"] == list(GENRES)


@pytest.mark.parametrize("command", ["genres", "classify", "read-score"])
def test_every_subcommand_has_help(command: str) -> None:
    result = run(command, "--help")
    assert result.returncode == 0
    assert "usage:" in result.stdout


def test_classify_json_one_object_per_file(tone_file, tiny_env: dict[str, str]) -> None:
    first = tone_file("a.wav", seconds=7.0)
    second = tone_file("b.mp3", seconds=3.0)
    result = run("classify", str(first), str(second), "--json", env=tiny_env)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["file"] for r in records] == [str(first), str(second)]
    for record in records:
        assert set(record) == {"file", "genres", "top", "segments", "warnings"}
        assert set(record["genres"]) == set(GENRES)
        assert record["top"] in GENRES
        assert all(set(s) == {"start", "end", "top"} for s in record["segments"])


def test_bad_files_are_reported_and_the_rest_processed(
    tmp_path: Path, tone_file, tiny_env: dict[str, str]
) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp3"
    text.write_text("these are not sounds")
    good = tone_file("good.flac", seconds=2.0)
    missing = tmp_path / "missing.ogg"
    result = run("classify", str(empty), str(text), str(good), str(missing), "--json", env=tiny_env)
    assert result.returncode == 1
    assert [json.loads(line)["file"] for line in result.stdout.splitlines()] == [str(good)]
    errors = result.stderr.strip().splitlines()
    assert errors[0].startswith(f"{empty}: ") and "empty" in errors[0]
    assert errors[1].startswith(f"{text}: ") and "WAV, FLAC" in errors[1]
    assert errors[2].startswith(f"{missing}: ")
    assert "Traceback" not in result.stderr


def test_missing_model_is_reported_without_traceback(tone_file, tmp_path: Path) -> None:
    result = run(
        "classify", str(tone_file("a.wav")), env={CHECKPOINT_ENV: str(tmp_path / "none.pt")}
    )
    assert result.returncode == 2
    assert "missing" in result.stderr and "Traceback" not in result.stderr


def community_csv(folder: Path, *, listeners: str, follows: str) -> Path:
    """A community CSV folder with these listeners.csv and follows.csv rows (after the header)."""
    folder.mkdir()
    (folder / "listeners.csv").write_text("listener_id,name,group\n" + listeners)
    (folder / "follows.csv").write_text("follower,followee\n" + follows)
    return folder


def test_community_import_listeners_and_export(tmp_path: Path) -> None:
    folder = community_csv(
        tmp_path / "csv", listeners="ann,Ann,north\nbob,Bob,\n", follows="ann,bob\n"
    )
    library = str(tmp_path / "studio")

    imported = run("community", "import", str(folder), "--library", library)
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["follows.csv"] == 1

    listed = run("listeners", "--library", library, "--json")
    assert json.loads(listed.stdout) == {
        "listeners": [
            {"id": "ann", "name": "Ann", "group": "north", "simulated": False},
            {"id": "bob", "name": "Bob", "group": "", "simulated": False},
        ]
    }

    exported = run("community", "export", str(tmp_path / "out"), "--library", library)
    assert exported.returncode == 0
    assert (tmp_path / "out" / "follows.csv").read_text().splitlines() == [
        "follower,followee",
        "ann,bob",
    ]


def test_a_malformed_community_import_names_file_and_line(tmp_path: Path) -> None:
    folder = community_csv(tmp_path / "csv", listeners="ann,Ann,north\n", follows="ann,zed\n")
    library = str(tmp_path / "studio")

    result = run("community", "import", str(folder), "--library", library)

    assert result.returncode == 1
    assert "follows.csv, line 2" in result.stderr and "Traceback" not in result.stderr
    listed = run("listeners", "--library", library, "--json")
    assert json.loads(listed.stdout) == {"listeners": []}  # nothing of the import was kept


@pytest.mark.parametrize("unbuffered", [True, False])
def test_a_reader_that_goes_away_ends_the_output_quietly(
    tone_file, tiny_env: dict[str, str], unbuffered: bool
) -> None:
    # `python -m engine classify ... | head -c 10`: the reader is gone before the first line.
    wav = tone_file("a.wav", seconds=2.0)
    read, write = os.pipe()
    os.close(read)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env.update({"CI": "1", **tiny_env, **({"PYTHONUNBUFFERED": "1"} if unbuffered else {})})
    try:
        result = subprocess.run(
            [sys.executable, "-m", "engine", "classify", str(wav), "--json"],
            cwd=ROOT, stdout=write, stderr=subprocess.PIPE, text=True, env=env, timeout=300,
        )  # fmt: skip
    finally:
        os.close(write)
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, result.stderr
    assert result.returncode == 1


@pytest.fixture(scope="module")
def mood_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment pointing the CLI at a tiny random checkpoint with mood heads."""
    path = save_tiny_mood_encoder(tmp_path_factory.mktemp("model") / "genre.pt")
    return {CHECKPOINT_ENV: str(path)}


def test_tag_json_one_object_per_file_and_bad_files_reported(
    tmp_path: Path, tone_file, mood_env: dict[str, str]
) -> None:
    good = tone_file("good.wav", seconds=4.0)
    bad = tmp_path / "notes.mp3"
    bad.write_text("these are not sounds")

    result = run("tag", str(good), str(bad), "--json", env=mood_env)

    assert result.returncode == 1
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert set(record) == {
        "file", "tags", "top_tags", "quadrant", "valence", "arousal", "listener", "warnings"
    }  # fmt: skip
    assert record["file"] == str(good) and record["listener"] is None
    assert list(record["tags"]) == list(MOOD_TAGS)
    assert all(0.0 <= p <= 1.0 for p in record["tags"].values())
    assert set(record["top_tags"]) <= set(MOOD_TAGS) and record["quadrant"] in QUADRANTS
    assert -1.0 <= record["valence"] <= 1.0 and -1.0 <= record["arousal"] <= 1.0
    assert any(line.startswith(f"{bad}: ") for line in result.stderr.splitlines())
    assert "Traceback" not in result.stderr


def test_tag_for_a_listener_and_for_one_that_does_not_exist(
    tmp_path: Path, tone_file, mood_env: dict[str, str]
) -> None:
    folder = community_csv(tmp_path / "csv", listeners="ann,Ann,north\n", follows="")
    library = str(tmp_path / "studio")
    assert run("community", "import", str(folder), "--library", library).returncode == 0
    clip = str(tone_file("a.wav", seconds=3.0))
    with Library.open(library) as opened:  # Ann has said of this clip: joy yes, sadness no
        for tag, accepted in (("joy", True), ("sadness", False)):
            opened.add_feedback("ann", load(clip).sha256, tag, accepted=accepted, crowd=0.5)

    crowd = run("tag", clip, "--json", env=mood_env)
    mine = run("tag", clip, "--listener", "ann", "--library", library, "--json", env=mood_env)
    unknown = run("tag", clip, "--listener", "zed", "--library", library, env=mood_env)

    assert mine.returncode == 0, mine.stderr
    record, theirs = json.loads(mine.stdout), json.loads(crowd.stdout)
    assert record["listener"] == "ann" and list(record["tags"]) == list(MOOD_TAGS)
    assert 0.0 < theirs["tags"]["joy"] < 1.0 and 0.0 < theirs["tags"]["sadness"] < 1.0
    assert record["tags"]["joy"] == 1.0 and record["tags"]["sadness"] == 0.0
    assert "joy" in record["top_tags"] and "sadness" not in record["top_tags"]
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert "there is no listener 'zed'" in unknown.stderr and "Traceback" not in unknown.stderr


def test_tag_with_a_model_without_mood_heads_stops_before_any_file(
    tmp_path: Path, tone_file, tiny_env: dict[str, str]
) -> None:
    bad = tmp_path / "notes.mp3"
    bad.write_text("these are not sounds")
    files = [str(bad), *(str(tone_file(f"{name}.wav", seconds=2.0)) for name in ("a", "b"))]

    result = run("tag", *files, "--json", env=tiny_env)

    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("no mood heads") == 1 and str(bad) not in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def reader_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment pointing the CLI at a tiny random score reader."""
    import torch

    from engine.models.omr import ReaderConfig, StaffReader
    from engine.score.encoding import vocabulary
    from engine.score.reader import CHECKPOINT_ENV as READER_ENV

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("reader") / "reader.pt"
    model = StaffReader(ReaderConfig(len(vocabulary()), channels=(4, 4, 8, 8), hidden=8,
                                     layers=1))
    model.save(path, vocab=vocabulary(), metrics={})
    return {READER_ENV: str(path)}


def test_read_score_writes_musicxml_and_midi_and_reports_bad_files(
    tmp_path: Path, reader_env: dict[str, str]
) -> None:
    from tests.score_pages import engraved_page, image_bytes, melody_score, pdf_bytes

    page, boxes = engraved_page(melody_score(parts=2, bars=6))
    (tmp_path / "duet.png").write_bytes(image_bytes(page))
    (tmp_path / "book.pdf").write_bytes(pdf_bytes([page, page]))
    (tmp_path / "notes.txt").write_text("not music")
    (tmp_path / "blank.png").write_bytes(image_bytes(255 + 0 * page))
    out = tmp_path / "out"
    result = run("read-score", str(tmp_path / "duet.png"), str(tmp_path / "notes.txt"),
                 str(tmp_path / "blank.png"), str(tmp_path / "book.pdf"), "--out", str(out),
                 "--json", env=reader_env)
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(r["file"]).name for r in lines] == ["duet.png", "book.pdf"]
    duet, book = lines
    assert set(duet) == {"file", "pages", "systems", "staves", "parts", "measures", "notes",
                         "mean_confidence", "musicxml", "midi", "seconds", "warnings"}
    assert (duet["pages"], duet["staves"], duet["parts"]) == (1, len(boxes), 2)
    assert (book["pages"], book["staves"]) == (2, 2 * len(boxes))
    assert Path(duet["musicxml"]) == out / "duet.musicxml"
    assert (out / "duet.musicxml").read_bytes().startswith(b"<?xml")
    assert (out / "book.mid").read_bytes()[:4] == b"MThd"
    errors = result.stderr.splitlines()
    assert any(e.startswith(f"{tmp_path / 'notes.txt'}: ") and "not an image" in e for e in errors)
    assert any(e.startswith(f"{tmp_path / 'blank.png'}: ") and "No staff" in e for e in errors)
    assert "Traceback" not in result.stderr


def test_read_score_without_its_model_stops_with_a_message(tmp_path: Path) -> None:
    from engine.score.reader import CHECKPOINT_ENV as READER_ENV

    result = run("read-score", "x.png", "--out", str(tmp_path),
                 env={READER_ENV: str(tmp_path / "none.pt")})
    assert result.returncode == 2
    assert "score reader's model file" in result.stderr and "Traceback" not in result.stderr


def test_read_score_reports_a_score_it_cannot_write(tmp_path: Path, reader_env) -> None:
    from tests.score_pages import engraved_page, image_bytes, melody_score

    page, _ = engraved_page(melody_score(parts=1, bars=4))
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(image_bytes(page))
    out = tmp_path / "out"
    (out / "a.musicxml").mkdir(parents=True)  # a folder where a's score should go
    result = run("read-score", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--out",
                 str(out), env=reader_env)
    assert result.returncode == 1
    assert f"{tmp_path / 'a.png'}: cannot write its score" in result.stderr
    assert "Traceback" not in result.stderr
    assert (out / "b.musicxml").is_file()
