"""The generator's training loop on a tiny corpus the test writes itself (no ../shared)."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import torch

from engine.generate import DRUM_STYLES, STYLES, GenerationSettings, generate, load_generator
from engine.midi import TOKENIZER_FILE, load_score, score_to_bytes
from engine.models.generator import MusicTransformer
from engine.train.generator import (
    TrainConfig,
    Windows,
    main,
    state_name,
    train,
)
from engine.train.generator_data import (
    CorpusPiece,
    PiecePlan,
    assign_splits,
    corpus_dir,
    tokenise,
)


def write_piece(path: Path, rng: np.random.Generator, drums: bool) -> float:
    """Eight bars of random notes (or a drum beat) at 100 bpm; returns the length in seconds."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=100)
    instrument = pretty_midi.Instrument(0, is_drum=drums)
    beat = 0.6
    for i in range(32):
        pitch = int(rng.choice([36, 38, 42])) if drums else int(rng.integers(55, 80))
        instrument.notes.append(pretty_midi.Note(90, pitch, i * beat, i * beat + beat / 2))
    pm.instruments.append(instrument)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(score_to_bytes(load_score(pm)))
    return 32 * beat


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A corpus of 4 pieces per style in the layout generator_data.build writes."""
    root = tmp_path_factory.mktemp("cache")
    folder = corpus_dir(root)
    rng = np.random.default_rng(0)
    plans = [
        PiecePlan(f"{style.replace(' ', '-')}/p{i}", style, style, "midi", "", 100.0, (0,))
        for style in STYLES
        for i in range(4)
    ]
    rows = []
    for plan in assign_splits(plans):
        name = f"midi/{plan.piece_id}.mid"
        seconds = write_piece(folder / name, rng, drums=plan.style in DRUM_STYLES)
        rows.append(asdict(CorpusPiece(plan.piece_id, plan.style, plan.source, plan.split,
                                       100.0, seconds, name)))  # fmt: skip
    (folder / "index.json").write_text(json.dumps(rows))
    return root


TINY = TrainConfig(
    seed=0, steps=4, minutes=10.0, batch=2, context=64, layers=1, heads=2, width=32,
    warmup=2, eval_every=2, eval_tokens=200, save_minutes=0.0,
)  # fmt: skip


def test_splits_hold_out_one_piece_in_ten_rounded_up(cache: Path) -> None:
    _, pieces = tokenise(cache)
    for style in STYLES:
        splits = [p.piece.split for p in pieces if p.piece.style == style]
        assert splits.count("heldout") == 1 and splits.count("train") == 3


def test_windows_start_with_style_and_tempo_and_drums_are_not_transposed(cache: Path) -> None:
    tokenizer, pieces = tokenise(cache)
    windows = Windows(pieces, tokenizer, context=64)
    batch = windows.sample(np.random.default_rng(0), 16)
    assert batch.shape == (16, 64)
    for row in batch.tolist():
        assert tokenizer[row[0]].startswith("Style_")
        assert tokenizer[row[1]].startswith("Tempo_")
        assert tokenizer[row[2]] == "Bar_None"
    evaluation = windows.evaluation(100)
    assert set(evaluation) == set(STYLES)


def test_train_writes_checkpoint_card_and_resumes(cache: Path, tmp_path: Path) -> None:
    checkpoints = tmp_path / "checkpoints"
    metrics = train(TINY, data_dir=tmp_path, cache_dir=cache, checkpoints=checkpoints,
                    fresh=True)  # fmt: skip
    assert metrics["step"] == 4
    assert set(metrics["heldout_perplexity"]) == set(STYLES)
    assert (checkpoints / TOKENIZER_FILE).is_file()
    card = (checkpoints / "generator.md").read_text()
    assert "held-out perplexity" in card and "python -m engine.train.generator" in card
    state = torch.load(corpus_dir(cache) / STATE_NAME, weights_only=False)
    assert state["step"] == 4
    evaluation = "## Evaluation\n\nFigures of bench/generation.py.\n"
    (checkpoints / "generator.md").write_text(
        card.replace("## Training", evaluation + "\n## Training")
    )
    # resuming continues the same run to its new length
    longer = TrainConfig(**{**asdict(TINY), "steps": 6})
    metrics = train(longer, data_dir=tmp_path, cache_dir=cache, checkpoints=checkpoints)
    assert metrics["step"] == 6
    card = (checkpoints / "generator.md").read_text()
    assert card.count(evaluation) == 1 and card.index(evaluation) < card.index("## Training")
    generator = load_generator(checkpoints / "generator.pt")
    assert generator.styles == STYLES
    result = generate(GenerationSettings(style="folk", seconds=3, tempo=120.0), generator,
                      render=False)  # fmt: skip
    assert load_score(result.midi).note_num() > 0


STATE_NAME = state_name("generator", fine_tuned=False)
FINETUNE_STATE_NAME = state_name("generator", fine_tuned=True)


def test_a_run_on_some_styles_writes_its_own_named_checkpoint(cache: Path, tmp_path: Path) -> None:
    checkpoints = tmp_path / "checkpoints"
    train(TINY, data_dir=tmp_path, cache_dir=cache, checkpoints=checkpoints, fresh=True)
    drums = TrainConfig(**{**asdict(TINY), "styles": ",".join(DRUM_STYLES),
                           "name": "generator_drums"})  # fmt: skip
    metrics = train(drums, data_dir=tmp_path, cache_dir=cache, checkpoints=checkpoints, fresh=True)
    assert set(metrics["heldout_perplexity"]) == set(DRUM_STYLES)
    _, meta = MusicTransformer.from_checkpoint(checkpoints / "generator_drums.pt")
    assert meta["styles"] == list(DRUM_STYLES) and set(meta["style_tempos"]) == set(DRUM_STYLES)
    card = (checkpoints / "generator_drums.md").read_text()
    assert "`generator_drums.pt`" in card and "--name generator_drums" in card
    assert "Groove MIDI" in card and "POP909" not in card
    assert (corpus_dir(cache) / state_name("generator_drums", fine_tuned=False)).is_file()
    generator = load_generator(checkpoints / "generator.pt")
    assert generator.drum_model is not None and generator.styles == STYLES
    assert main(["--cache", str(cache), "--checkpoints", str(tmp_path / "x"), "--styles",
                 "polka", "--steps", "1"]) == 2  # fmt: skip


def test_style_power_sets_how_often_each_style_is_drawn(cache: Path) -> None:
    tokenizer, pieces = tokenise(cache)
    tokens = {
        s: sum(len(p.ids) for p in pieces if p.piece.style == s and p.piece.split == "train")
        for s in STYLES
    }
    equal = Windows(pieces, tokenizer, context=64, style_power=0.0)
    assert equal.style_weights == pytest.approx(np.full(len(STYLES), 1 / len(STYLES)))
    as_corpus = Windows(pieces, tokenizer, context=64, style_power=1.0)
    total = sum(tokens.values())
    assert as_corpus.style_weights == pytest.approx([tokens[s] / total for s in STYLES])


def test_piece_power_sets_how_often_each_piece_of_a_style_is_drawn(cache: Path) -> None:
    tokenizer, pieces = tokenise(cache)
    style = STYLES[0]
    ours = [i for i, p in enumerate(pieces) if p.piece.style == style and p.piece.split == "train"]
    pieces[ours[0]] = replace(pieces[ours[0]], ids=pieces[ours[0]].ids[:60])  # a short piece
    lengths = np.array([len(pieces[i].ids) for i in ours], float)
    assert len(set(lengths)) > 1  # pieces of different lengths: the two powers differ
    by_token = Windows(pieces, tokenizer, context=64)
    assert by_token.piece_weights[style] == pytest.approx(lengths / lengths.sum())
    by_piece = Windows(pieces, tokenizer, context=64, piece_power=0.0)
    assert by_piece.piece_weights[style] == pytest.approx(np.full(len(lengths), 1 / len(lengths)))


def test_a_run_fine_tunes_from_a_checkpoint_and_keeps_the_first_runs_state(
    cache: Path, tmp_path: Path
) -> None:
    base_dir, tuned_dir = tmp_path / "base", tmp_path / "tuned"
    train(TINY, data_dir=tmp_path, cache_dir=cache, checkpoints=base_dir, fresh=True)
    base_state = (corpus_dir(cache) / STATE_NAME).read_bytes()
    tune = TrainConfig(**{**asdict(TINY), "init": str(base_dir / "generator.pt"),
                          "style_power": 0.0, "steps": 2})  # fmt: skip
    metrics = train(tune, data_dir=tmp_path, cache_dir=cache, checkpoints=tuned_dir, fresh=True)
    assert metrics["step"] == 2
    assert (corpus_dir(cache) / STATE_NAME).read_bytes() == base_state
    assert (corpus_dir(cache) / FINETUNE_STATE_NAME).is_file()
    # step 0 of the fine-tuning is the first run's model, scored on the same windows
    _, meta = MusicTransformer.from_checkpoint(base_dir / "generator.pt")
    state = torch.load(corpus_dir(cache) / FINETUNE_STATE_NAME, weights_only=False)
    assert state["history"][0]["step"] == 0
    assert state["history"][0]["heldout_perplexity"] == meta["metrics"]["heldout_perplexity"]
    card = (tuned_dir / "generator.md").read_text()
    assert f"{meta['retrain']} --checkpoints {base_dir}" in card
    assert f"--init {base_dir / 'generator.pt'}" in card and "--style-power 0" in card
    (tuned_dir / "generator.md").unlink()  # --card-only --init writes it again from that state
    assert main(["--cache", str(cache), "--checkpoints", str(tuned_dir), "--card-only",
                 "--init", tune.init]) == 0  # fmt: skip
    assert (tuned_dir / "generator.md").read_text() == card


def test_fine_tuning_from_a_generator_of_another_shape_is_a_clear_error(
    cache: Path, tmp_path: Path
) -> None:
    base_dir = tmp_path / "base"
    train(TINY, data_dir=tmp_path, cache_dir=cache, checkpoints=base_dir, fresh=True)
    wider = TrainConfig(**{**asdict(TINY), "width": 64, "init": str(base_dir / "generator.pt")})
    with pytest.raises(ValueError, match="another shape"):
        train(wider, data_dir=tmp_path, cache_dir=cache, checkpoints=tmp_path / "w", fresh=True)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    code = main(["--cache", str(cache), "--checkpoints", str(tmp_path / "b"),
                 "--init", str(broken), "--steps", "2", "--fresh"])  # fmt: skip
    assert code == 2


def test_the_originality_guard_holds_the_training_pieces_only(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.originality import GUARD_FILE, CopyGuard, note_intervals
    from engine.train import originality

    assert originality.main(["--cache", str(cache), "--checkpoints", str(tmp_path)]) == 0
    guard = CopyGuard.load(tmp_path / GUARD_FILE)
    assert guard.limit == 32 and set(guard.tables) == set(STYLES)
    folder = corpus_dir(cache)
    rows = json.loads((folder / "index.json").read_text())
    for row in rows:
        played = guard.copies(row["style"], note_intervals(folder / row["midi_path"]))
        assert played == (row["split"] == "train"), row  # 32-note pieces: found whole or not
    missing = ["--cache", str(tmp_path / "none"), "--checkpoints", str(tmp_path)]
    assert originality.main(missing) == 2  # no corpus there
    assert "build the corpus first" in capsys.readouterr().err
