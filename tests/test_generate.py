"""The generation front, with a tiny randomly initialised generator saved to a temp folder."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import torch

from engine import generate as gen_module
from engine.errors import InvalidMidi, InvalidSettings, ModelUnavailable, RenderingUnavailable
from engine.generate import (
    CHECKPOINT_ENV,
    DRUM_CHECKPOINT_NAME,
    DRUM_STYLES,
    STYLES,
    GenerationSettings,
    generate,
    load_generator,
)
from engine.midi import TOKENIZER_FILE, load_score, make_tokenizer
from engine.models.generator import GeneratorConfig, MusicTransformer
from tests.helpers import run_engine

FAST = {"seconds": 4.0, "tempo": 120.0}  # short pieces keep the tests quick


def save_tiny_generator(
    folder: Path,
    seed: int = 0,
    style_dropout: float = 0.0,
    name: str = "generator.pt",
    metrics: dict | None = None,
    styles: tuple[str, ...] = STYLES,
) -> Path:
    """A 1-layer random generator with the real tokenizer, as training would ship it."""
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = make_tokenizer(STYLES)
    tokenizer.save(folder / TOKENIZER_FILE)
    torch.manual_seed(seed)
    config = GeneratorConfig(
        vocab_size=len(tokenizer.vocab), context=64, layers=1, heads=2, width=32, dropout=0.0
    )
    path = folder / name
    MusicTransformer(config).save(
        path,
        vocab=[tokenizer[i] for i in range(len(tokenizer.vocab))],
        meta={
            "styles": list(styles),
            "style_tempos": {s: 100.0 for s in STYLES},
            "style_dropout": style_dropout,
            "metrics": metrics or {},
        },
    )
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_generator(tmp_path_factory.mktemp("generator"))


@pytest.fixture(scope="module")
def tiny(checkpoint: Path):
    return load_generator(checkpoint, device="cpu")


def prompt_bytes() -> bytes:
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    flute = pretty_midi.Instrument(program=73)
    for i, pitch in enumerate([62, 64, 67, 69, 67, 64, 62, 60]):
        flute.notes.append(pretty_midi.Note(90, pitch, i * 0.5, i * 0.5 + 0.45))
    pm.instruments.append(flute)
    buffer = io.BytesIO()
    pm.write(buffer)
    return buffer.getvalue()


def test_same_seed_same_midi_bytes(tiny) -> None:
    settings = GenerationSettings(style="folk", seed=7, **FAST)
    first = generate(settings, tiny, render=False)
    second = generate(settings, tiny, render=False)
    assert first.midi == second.midi
    assert load_score(first.midi).note_num() > 0
    other = generate(GenerationSettings(style="folk", seed=8, **FAST), tiny, render=False)
    assert other.midi != first.midi


def test_variation_k_is_seed_plus_k(tiny) -> None:
    many = generate(GenerationSettings(style="pop", seed=3, variations=3, **FAST), tiny,
                    render=False)  # fmt: skip
    assert [p.seed for p in many.pieces] == [3, 4, 5]
    single = generate(GenerationSettings(style="pop", seed=4, **FAST), tiny, render=False)
    assert many.pieces[1].midi == single.midi
    assert len({p.midi for p in many.pieces}) == 3


def test_result_holds_settings_roll_and_timing(tiny) -> None:
    result = generate(GenerationSettings(style="Chinese-Folk", seed=1, **FAST), tiny, render=False)
    assert result.settings.style == "chinese folk"
    assert result.seconds_taken > 0
    assert result.device == "cpu"
    piece = result.pieces[0]
    assert len(piece.piano_roll) == load_score(piece.midi).note_num()
    assert piece.seconds <= 4.0 + 1e-6
    assert piece.piano_roll.end.max() <= 4.0 + 1e-3  # nothing rings past the asked length
    assert piece.tempo == 120.0
    assert load_score(piece.midi).tempos[0].qpm == pytest.approx(120.0)


def test_length_in_bars(tiny) -> None:
    result = generate(GenerationSettings(style="classical", bars=2, tempo=120.0, seed=2), tiny,
                      render=False)  # fmt: skip
    assert result.settings.seconds is None
    signature = load_score(result.pieces[0].midi).time_signatures[0]
    bar_quarters = signature.numerator * 4 / signature.denominator  # 4/2 (8) for this seed
    assert result.pieces[0].seconds == pytest.approx(2 * bar_quarters * 0.5)  # at 120 bpm


def test_drum_style_plays_only_drums_and_drums_go_under_melody(tiny) -> None:
    drums = generate(GenerationSettings(style="funk", seed=0, **FAST), tiny, render=False)
    assert all(t.is_drum for t in load_score(drums.midi).tracks)
    both = generate(GenerationSettings(style="folk", drums="rock", seed=0, **FAST), tiny,
                    render=False)  # fmt: skip
    tracks = load_score(both.midi).tracks
    assert any(t.is_drum for t in tracks) and any(not t.is_drum for t in tracks)


def test_instrument_sets_every_melodic_program(tiny) -> None:
    result = generate(GenerationSettings(style="pop", instrument=73, seed=5, **FAST), tiny,
                      render=False)  # fmt: skip
    assert {t.program for t in load_score(result.midi).tracks if not t.is_drum} == {73}


def test_prompt_is_continued(tiny, tmp_path: Path) -> None:
    path = tmp_path / "prompt.mid"
    path.write_bytes(prompt_bytes())
    # a seed whose untrained continuation reaches its last bar line within the token cap
    result = generate(GenerationSettings(style="folk", prompt=path, prompt_bars=1, seed=1,
                                         **FAST), tiny, render=False)  # fmt: skip
    piece = result.pieces[0]
    assert piece.prompt_seconds == pytest.approx(2.0)
    assert piece.seconds == pytest.approx(piece.prompt_seconds + 4.0, abs=1e-6)
    first = sorted((round(s, 3), int(p)) for s, p in zip(piece.piano_roll.start,
                   piece.piano_roll.pitch, strict=True) if s < 2.0)  # fmt: skip
    assert [p for _, p in first[:4]] == [62, 64, 67, 69]
    again = generate(GenerationSettings(style="folk", prompt=prompt_bytes(), prompt_bars=1,
                                        seed=1, **FAST), tiny, render=False)  # fmt: skip
    assert again.midi == result.midi


@pytest.mark.parametrize(
    "bad",
    [
        {"style": "polka"},
        {"style": "folk", "drums": "waltz"},
        {"style": "rock", "drums": "funk"},
        {"seconds": 0.5},
        {"seconds": 1000},
        {"seconds": float("nan")},
        {"seconds": "ten"},
        {"bars": 0},
        {"bars": 2.5},
        {"seconds": 10, "bars": 4},
        {"tempo": 10},
        {"tempo": 400},
        {"temperature": 0},
        {"temperature": 5},
        {"top_p": 0},
        {"top_p": 1.5},
        {"seed": -1},
        {"seed": 1.5},
        {"variations": 0},
        {"variations": 50},
        {"instrument": 128},
        {"instrument": -1},
        {"prompt_bars": 0},
        {"style_strength": -1},
        {"style_strength": 6},
        {"prompt": b"MThd", "prompt_piece": "folk/x"},
        {"prompt_piece": "no/such/piece"},
    ],
)
def test_every_bad_control_raises_invalid_settings(tiny, bad: dict) -> None:
    with pytest.raises(InvalidSettings) as caught:
        generate(GenerationSettings(**bad), tiny, render=False)
    assert str(caught.value)  # a message a person can act on


def test_invalid_settings_message_names_value_and_range() -> None:
    with pytest.raises(InvalidSettings, match=r"temperature = 9.*0\.05 to 2"):
        GenerationSettings(temperature=9).validated()
    with pytest.raises(InvalidSettings, match="classical"):
        GenerationSettings(style="polka").validated()


@pytest.mark.parametrize(
    "prompt",
    [b"", b"this is not a MIDI file", prompt_bytes()[:30], "does/not/exist.mid"],
    ids=["empty", "garbage", "truncated", "missing"],
)
def test_broken_prompt_raises_invalid_midi(tiny, prompt) -> None:
    with pytest.raises(InvalidMidi):
        generate(GenerationSettings(style="folk", prompt=prompt, **FAST), tiny, render=False)


def test_broken_prompt_file_on_disk(tiny, tmp_path: Path) -> None:
    path = tmp_path / "broken.mid"
    path.write_bytes(prompt_bytes()[:-20])
    with pytest.raises(InvalidMidi):
        generate(GenerationSettings(style="folk", prompt=path, **FAST), tiny, render=False)


def test_missing_rendering_still_returns_midi(tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable(*args, **kwargs):
        raise RenderingUnavailable("no FluidSynth here.")

    monkeypatch.setattr("engine.synth.render_midi", unavailable)
    result = generate(GenerationSettings(style="folk", seed=1, **FAST), tiny, render=True)
    assert result.audio is None
    assert load_score(result.midi).note_num() > 0
    assert any("No audio" in w for w in result.warnings)


def test_progress_reaches_one(tiny) -> None:
    seen: list[float] = []
    generate(GenerationSettings(style="folk", seed=1, **FAST), tiny, render=False,
             progress=seen.append)  # fmt: skip
    assert seen and seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)


def test_missing_or_mismatched_checkpoint(tmp_path: Path, checkpoint: Path) -> None:
    with pytest.raises(ModelUnavailable, match="nothing.pt are missing"):
        load_generator(tmp_path / "nothing.pt")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(checkpoint.read_bytes()[:1000])  # cut short
    with pytest.raises(ModelUnavailable, match="could not be read"):
        load_generator(broken)
    encoder = tmp_path / "encoder.pt"  # a checkpoint, but not a generator's
    torch.save({"config": {}, "state_dict": {}}, encoder)
    with pytest.raises(ModelUnavailable, match="not a music generator"):
        load_generator(encoder)
    other = tmp_path / "other"
    other.mkdir()
    (other / "generator.pt").write_bytes(checkpoint.read_bytes())
    make_tokenizer(("folk",)).save(other / TOKENIZER_FILE)  # a different vocabulary
    with pytest.raises(ModelUnavailable, match="does not match"):
        load_generator(other / "generator.pt")


def test_drum_styles_sample_from_the_drum_model_beside_the_generator(tiny, tmp_path: Path) -> None:
    perplexity = {"funk": 7.0, "folk": 5.0}
    save_tiny_generator(tmp_path / "both", metrics={"heldout_perplexity": perplexity})  # tiny's
    drums = {"heldout_perplexity": {"funk": 9.0}}
    save_tiny_generator(tmp_path / "both", seed=1, name=DRUM_CHECKPOINT_NAME, metrics=drums)
    both = load_generator(tmp_path / "both" / "generator.pt", device="cpu")
    drums_alone = load_generator(save_tiny_generator(tmp_path / "drums", seed=1), device="cpu")
    assert tiny.drum_model is None and both.drum_model is not None
    assert both.metrics["heldout_perplexity"] == {"funk": 9.0, "folk": 5.0}

    def midi(generator, **settings) -> bytes:
        settings = GenerationSettings(seed=3, **settings, **FAST)
        return generate(settings, generator, render=False).midi

    assert midi(both, style="folk") == midi(tiny, style="folk")
    assert midi(both, style="funk") == midi(drums_alone, style="funk") != midi(tiny, style="funk")
    under = load_score(midi(both, style="folk", drums="funk"))
    assert any(t.is_drum for t in under.tracks) and any(not t.is_drum for t in under.tracks)
    assert midi(both, style="folk", drums="funk") != midi(tiny, style="folk", drums="funk")
    mismatched = tmp_path / "mismatched"
    save_tiny_generator(mismatched)
    model, meta = MusicTransformer.from_checkpoint(mismatched / "generator.pt")
    vocab = meta.pop("vocab")
    model.save(mismatched / DRUM_CHECKPOINT_NAME, vocab=vocab[::-1], meta=meta)
    with pytest.raises(ModelUnavailable, match="another vocabulary"):
        load_generator(mismatched / "generator.pt")


def test_the_drum_model_samples_only_the_drum_styles_it_learnt(tiny, tmp_path: Path) -> None:
    save_tiny_generator(tmp_path)
    drums = {"heldout_perplexity": {"funk": 9.0, "rock": 8.0}}
    save_tiny_generator(tmp_path, seed=1, name=DRUM_CHECKPOINT_NAME, metrics=drums,
                        styles=("funk",))  # fmt: skip
    both = load_generator(tmp_path / "generator.pt", device="cpu")
    assert both.drum_model_styles == ("funk",)
    assert both.model_for("funk") is both.drum_model
    assert both.model_for("rock") is both.model and both.model_for("folk") is both.model
    assert both.metrics["heldout_perplexity"] == {"funk": 9.0}
    rock = GenerationSettings(style="rock", seed=3, **FAST)
    assert generate(rock, both, render=False).midi == generate(rock, tiny, render=False).midi


class _CopiesEverything:
    """A stand-in originality guard that finds every piece copied."""

    limit = 32

    def copies(self, style: str, symbols: np.ndarray) -> bool:
        return True


def test_a_piece_that_replays_a_training_piece_is_drawn_again(tiny, tmp_path: Path) -> None:
    from dataclasses import replace

    from engine.generate import ORIGINALITY_DRAWS
    from engine.originality import GUARD_FILE, CopyGuard, note_intervals

    settings = GenerationSettings(style="folk", seed=5, **FAST)
    first = generate(settings, tiny, render=False)
    assert first.pieces[0].draws == 1 and tiny.guard is None
    # A guard whose training pieces hold that very piece: its first draw is refused.
    folder = tmp_path / "guarded"
    save_tiny_generator(folder)
    symbols = note_intervals(first.midi)
    CopyGuard.build({"folk": [symbols]}, limit=len(symbols) + 1).save(folder / GUARD_FILE)
    guarded = load_generator(folder / "generator.pt", device="cpu")
    assert guarded.guard is not None and guarded.guard.copies("folk", symbols)
    again = generate(settings, guarded, render=False)
    assert again.pieces[0].draws > 1 and not again.warnings
    assert again.midi != first.midi
    assert not guarded.guard.copies("folk", note_intervals(again.midi))
    assert generate(settings, guarded, render=False).midi == again.midi  # still deterministic
    # Other styles are not held back by the folk pieces.
    rock = GenerationSettings(style="rock", seed=5, **FAST)
    assert generate(rock, guarded, render=False).pieces[0].draws == 1
    # When every draw copies, the last one is kept and the person is told.
    stubborn = replace(tiny, guard=_CopiesEverything())
    result = generate(settings, stubborn, render=False)
    assert result.pieces[0].draws == ORIGINALITY_DRAWS
    assert "after 4 draws" in result.warnings[0] and "seed 5" in result.warnings[0]


def test_styles_cover_melodic_and_drum_styles() -> None:
    assert set(DRUM_STYLES) < set(STYLES)
    assert gen_module.styles()[:5] == list(STYLES[:5])


def run_cli(*args: str, checkpoint: Path) -> subprocess.CompletedProcess[str]:
    return run_engine(*args, env={CHECKPOINT_ENV: str(checkpoint)})


def test_cli_generate_writes_readable_midi(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "piece.mid"
    result = run_cli("generate", "--genre", "folk", "--seconds", "4", "--seed", "3", "--out",
                     str(out), "--json", checkpoint=checkpoint)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert load_score(out).note_num() > 0
    summary = json.loads(result.stdout)
    assert summary["pieces"][0]["midi"] == str(out)
    again = tmp_path / "again.mid"
    run_cli("generate", "--genre", "folk", "--seconds", "4", "--seed", "3", "--out", str(again),
            checkpoint=checkpoint)  # fmt: skip
    assert again.read_bytes() == out.read_bytes()


def test_cli_generate_reports_bad_settings_and_prompts(checkpoint: Path, tmp_path: Path) -> None:
    bad = run_cli("generate", "--genre", "polka", "--seconds", "4", "--out",
                  str(tmp_path / "x.mid"), checkpoint=checkpoint)  # fmt: skip
    assert bad.returncode != 0
    assert "polka" in bad.stderr and "Traceback" not in bad.stderr
    strong = run_cli("generate", "--genre", "folk", "--style-strength", "9", "--out",
                     str(tmp_path / "s.mid"), checkpoint=checkpoint)  # fmt: skip
    assert strong.returncode != 0
    assert "style_strength" in strong.stderr and "Traceback" not in strong.stderr
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"not midi")
    result = run_cli("generate", "--genre", "folk", "--prompt", str(broken), "--out",
                     str(tmp_path / "y.mid"), checkpoint=checkpoint)  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.startswith(f"{broken}:") and "Traceback" not in result.stderr


def test_cli_genres_lists_styles() -> None:
    result = run_engine("genres", "--json")
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert "genres" in data and data["styles"][:5] == list(STYLES[:5])


def test_shipped_heldout_piece_can_be_continued(tiny) -> None:
    pieces = gen_module.heldout_pieces("chinese folk")
    if not pieces:
        pytest.skip("no held-out pieces shipped")
    for piece in gen_module.heldout_pieces():
        assert piece.path.is_file() and piece.licence and piece.style in STYLES
        assert not piece.licence.startswith("GPL")
    settings = GenerationSettings(
        style="chinese folk", prompt_piece=pieces[0].piece_id, prompt_bars=2, seed=0, **FAST
    )
    result = generate(settings, tiny, render=False)
    assert result.pieces[0].prompt_seconds > 0


def test_guidance_mixes_conditioned_and_unconditioned_logits(
    tiny, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.models import generator as model_module
    from engine.models.generator import SamplingParams

    seen: list[np.ndarray] = []

    def first_token(logits: np.ndarray, *args, **kwargs) -> int:
        seen.append(logits.copy())
        return 5

    monkeypatch.setattr(model_module, "sample_token", first_token)
    prefix, unconditioned = [10, 20, 30], 1
    tiny.model.generate(
        prefix,
        params=SamplingParams(guidance=2.5, max_new_tokens=1),
        generator=np.random.default_rng(0),
        unconditioned=unconditioned,
    )
    with torch.inference_mode():
        c = tiny.model(torch.tensor([prefix]))[0, -1]
        u = tiny.model(torch.tensor([[unconditioned, 20, 30]]))[0, -1]
    np.testing.assert_allclose(seen[0], (u + 2.5 * (c - u)).numpy(), rtol=1e-4, atol=1e-4)


def test_style_strength_applies_only_to_guided_generators(tiny, tmp_path: Path) -> None:
    guided = load_generator(save_tiny_generator(tmp_path, style_dropout=0.1), device="cpu")
    assert guided.guided and not tiny.guided

    def midi(generator, strength: float) -> bytes:
        settings = GenerationSettings(style="folk", seed=3, style_strength=strength, **FAST)
        return generate(settings, generator, render=False).midi

    assert midi(guided, 1.0) == midi(tiny, 1.0) == midi(tiny, 3.0)  # same weights, seed 0
    assert midi(guided, 3.0) != midi(guided, 1.0)
    assert midi(guided, 3.0) == midi(guided, 3.0)


def test_numpy_sampler_computes_what_the_model_computes() -> None:
    from engine.models.generator import _CompiledRunner, _TorchRunner

    torch.manual_seed(1)
    config = GeneratorConfig(vocab_size=40, context=32, layers=2, heads=2, width=16, dropout=0.0)
    model = MusicTransformer(config).eval()
    with torch.no_grad():  # away from the initial ones and zeros, so every weight counts
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    rows = torch.randint(0, 40, (2, 32), generator=torch.Generator().manual_seed(2)).tolist()
    fast, reference = _CompiledRunner(model), _TorchRunner(model)
    with torch.inference_mode():
        for run in (fast, reference):
            run.reset(2)
        chunks = [(0, 5), (5, 12), (12, 13), (13, 20), *((i, i + 1) for i in range(20, 32))]
        for begin, end in chunks:  # several positions at once, after cached ones too
            chunk = [r[begin:end] for r in rows]
            np.testing.assert_allclose(fast(chunk), reference(chunk), rtol=1e-4, atol=1e-5)
    assert fast.length == reference.length == 32 and fast.batch == 2
    with pytest.raises(ValueError, match="exceed the context"):
        fast([[1], [2]])
    fast.reset(2)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        fast([[1], [40]])
    for wrong in ([[1]], [[], []], [1, 2]):  # a row too few, no positions, not rows
        with pytest.raises(ValueError, match="rows of"):
            fast(wrong)


def test_sample_token_keeps_to_bias_and_nucleus() -> None:
    from engine.models.generator import SamplingParams, sample_token

    logits = np.log(np.array([0.5, 0.3, 0.2, 1e-9]))
    rng = np.random.default_rng(0)

    def draws(params: SamplingParams, bias: np.ndarray | None = None) -> np.ndarray:
        return np.bincount([sample_token(logits, params, rng, bias) for _ in range(3000)],
                           minlength=4)  # fmt: skip

    counts = draws(SamplingParams(top_p=1.0))
    np.testing.assert_allclose(counts[:3] / 3000, [0.5, 0.3, 0.2], atol=0.03)
    counts = draws(SamplingParams(top_p=0.7))  # 0.5 before the third token: it is cut
    assert counts[2:].sum() == 0 and counts[0] / counts[1] == pytest.approx(5 / 3, rel=0.15)
    assert draws(SamplingParams(top_p=1e-6))[0] == 3000
    only_last = np.array([-np.inf, -np.inf, -np.inf, 0.0])
    assert draws(SamplingParams(top_p=0.5), only_last)[3] == 3000
    twins = [np.random.default_rng(7), np.random.default_rng(7)]
    runs = [[sample_token(logits, SamplingParams(), rng, None) for _ in range(50)] for rng in twins]
    assert runs[0] == runs[1] and len(set(runs[0])) > 1
    with pytest.raises(ValueError, match="no token"):
        sample_token(logits, SamplingParams(), rng, np.full(4, -np.inf))
