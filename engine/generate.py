"""Music generation by style: settings -> tokens -> MIDI -> audio.

    from engine.generate import GenerationSettings, generate
    result = generate(GenerationSettings(style="folk", seconds=20, seed=3))
    Path("tune.mid").write_bytes(result.midi)

Layers: `load_generator()` gives a `Generator` (model + tokenizer + metadata);
`generate(settings, generator)` gives a `GenerationResult` (MIDI bytes, audio, piano roll per
variation); the CLI and pages write files from it. The same seed and settings give
byte-identical MIDI: variation k is drawn with seed + k from its own random generator.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.errors import EngineError, InvalidMidi, InvalidSettings, ModelUnavailable

log = logging.getLogger("engine.generate")

# The generator's styles, in the order of their tokens. The first five carry melody and
# harmony; the last five are drum grooves, which play alone or under a melodic style.
MELODIC_STYLES = ("classical", "folk", "chinese folk", "pop", "renaissance")
DRUM_STYLES = ("rock", "funk", "jazz", "latin", "hiphop")
STYLES = MELODIC_STYLES + DRUM_STYLES

CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
CHECKPOINT_ENV = "MUSIC_STUDIO_GENERATOR"  # a generator.pt path that overrides the shipped one
CHECKPOINT_NAME = "generator.pt"
DRUM_CHECKPOINT_NAME = "generator_drums.pt"  # the drum styles' own model, beside the generator
MARKOV_NAME = "markov.npz"  # the baseline, beside the generator
HELDOUT_DIR = "generator_heldout"  # shipped held-out pieces (prompts, Compare originals)

# Allowed ranges of the controls (inclusive).
DEFAULT_SECONDS = 30.0
SECONDS_RANGE = (2.0, 300.0)
BARS_RANGE = (1, 128)
TEMPO_RANGE = (40.0, 240.0)  # quarter notes per minute
TEMPERATURE_RANGE = (0.05, 2.0)
TOP_P_RANGE = (0.05, 1.0)
STYLE_STRENGTH_RANGE = (0.0, 5.0)  # 0: music of no named style, 1: plain conditioning
DEFAULT_STYLE_STRENGTH = 2.0
SEED_RANGE = (0, 2**32 - 1)
VARIATIONS_RANGE = (1, 8)
INSTRUMENT_RANGE = (0, 127)  # General MIDI program, counted from 0
PROMPT_BARS_RANGE = (1, 16)
TOKENS_PER_BEAT_CAP = 64  # generated tokens per beat before giving up on a bar line
ORIGINALITY_DRAWS = 4  # draws of a part, at most, while it replays a run of a training piece


# --------------------------------------------------------------------------------------------
# Settings and results


def normalise_style(name: str) -> str:
    """ "Chinese-Folk", "chinese_folk" -> "chinese folk"."""
    return " ".join(str(name).strip().lower().replace("-", " ").replace("_", " ").split())


@dataclass(frozen=True)
class GenerationSettings:
    """What to generate. Check with `validated()`; `generate` does it for you."""

    style: str = "classical"  # one of styles()
    seconds: float | None = None  # length of the new music (DEFAULT_SECONDS if no bars)
    bars: int | None = None  # or the length in bars
    tempo: float | None = None  # bpm; None: the prompt's tempo, else the style's usual tempo
    temperature: float = 1.0  # < 1 plays safer, > 1 takes more risks
    top_p: float = 0.95  # nucleus sampling mass
    style_strength: float = DEFAULT_STYLE_STRENGTH  # classifier-free guidance toward the style
    # (> 1: more typical of it); only for generators trained for it (Generator.guided)
    seed: int = 0  # same seed and settings -> byte-identical MIDI
    variations: int = 1  # pieces to make (seeds seed, seed + 1, ...)
    instrument: int | None = None  # General MIDI program for every melodic part; None: style's
    drums: str | None = None  # a drum style to play under a melodic style, or None
    prompt: bytes | str | Path | None = None  # MIDI to continue (bytes or a path)
    prompt_piece: str | None = None  # or the id of a shipped held-out piece to continue
    prompt_bars: int = 4  # bars of the prompt to continue from

    def validated(self, known_styles: tuple[str, ...] | list[str] = STYLES) -> GenerationSettings:
        """These settings with the style names normalised.

        Raises:
            InvalidSettings: naming the bad setting, its value and what is allowed.
        """
        known = tuple(known_styles)
        style = normalise_style(self.style)
        if style not in known:
            raise InvalidSettings(
                f"Unknown style {self.style!r}; choose one of: {', '.join(known)}."
            )
        drums = normalise_style(self.drums) if self.drums else None
        if drums is not None:
            drum_styles = [s for s in known if s in DRUM_STYLES]
            if drums not in drum_styles:
                raise InvalidSettings(
                    f"Unknown drum style {self.drums!r}; choose one of: {', '.join(drum_styles)}."
                )
            if style in DRUM_STYLES:
                raise InvalidSettings(
                    f"drums={self.drums!r} goes under a melodic style, and {style!r} is already "
                    "a drum style: leave drums empty or pick a melodic style."
                )
        if self.seconds is not None and self.bars is not None:
            raise InvalidSettings("Give the length in seconds or in bars, not both.")
        seconds = self.seconds
        if seconds is None and self.bars is None:
            seconds = DEFAULT_SECONDS
        if seconds is not None:
            _check_range("seconds", seconds, SECONDS_RANGE)
        if self.bars is not None:
            _check_int("bars", self.bars, BARS_RANGE)
        if self.tempo is not None:
            _check_range("tempo", self.tempo, TEMPO_RANGE, unit=" bpm")
        _check_range("temperature", self.temperature, TEMPERATURE_RANGE)
        _check_range("top_p", self.top_p, TOP_P_RANGE)
        _check_range("style_strength", self.style_strength, STYLE_STRENGTH_RANGE)
        _check_int("seed", self.seed, SEED_RANGE)
        _check_int("variations", self.variations, VARIATIONS_RANGE)
        if self.instrument is not None:
            _check_int("instrument", self.instrument, INSTRUMENT_RANGE)
        _check_int("prompt_bars", self.prompt_bars, PROMPT_BARS_RANGE)
        if self.prompt is not None and self.prompt_piece is not None:
            raise InvalidSettings("Give one prompt: a MIDI file or a held-out piece, not both.")
        return replace(self, style=style, drums=drums, seconds=seconds)


def _check_range(name: str, value: Any, bounds: tuple[float, float], unit: str = "") -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not bounds[0] <= value <= bounds[1]:
        raise InvalidSettings(
            f"{name} = {value!r} is out of range: use {bounds[0]:g}{unit} to {bounds[1]:g}{unit}."
        )


def _check_int(name: str, value: Any, bounds: tuple[int, int]) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidSettings(
            f"{name} = {value!r} must be a whole number ({bounds[0]}..{bounds[1]})."
        )
    if not bounds[0] <= value <= bounds[1]:
        raise InvalidSettings(
            f"{name} = {value!r} is out of range: use {bounds[0]} to {bounds[1]}."
        )


@dataclass(frozen=True)
class GeneratedPiece:
    """One generated variation."""

    midi: bytes  # Standard MIDI File
    audio: np.ndarray | None  # mono float32 at sample_rate; None when rendering is unavailable
    sample_rate: int
    piano_roll: Any  # engine.midi.PianoRoll of the MIDI
    seconds: float  # length of the music, prompt included
    prompt_seconds: float  # the continued prompt's share at the start (0 without a prompt)
    seed: int  # the seed this variation was drawn with
    tempo: float  # bpm
    draws: int = 1  # 1, or more when earlier draws replayed a run of a training piece


@dataclass(frozen=True)
class GenerationResult:
    """What `generate` made, how, and how long it took."""

    pieces: tuple[GeneratedPiece, ...]  # one per variation
    settings: GenerationSettings  # validated
    seconds_taken: float  # wall time of generation and rendering
    device: str  # where the model ran
    warnings: tuple[str, ...] = field(default=())  # e.g. rendering unavailable

    @property
    def midi(self) -> bytes:
        """The first variation's MIDI."""
        return self.pieces[0].midi

    @property
    def audio(self) -> np.ndarray | None:
        """The first variation's audio (None when it could not be rendered)."""
        return self.pieces[0].audio

    @property
    def piano_roll(self) -> Any:
        """The first variation's piano roll."""
        return self.pieces[0].piano_roll


# --------------------------------------------------------------------------------------------
# The loaded model


@dataclass(frozen=True)
class Generator:
    """A loaded generator: network, tokenizer, and what its checkpoint says about itself."""

    model: Any  # engine.models.generator.MusicTransformer, in eval mode
    tokenizer: Any  # miditok REMI
    styles: tuple[str, ...]  # styles it was trained on
    style_tempos: dict[str, float]  # usual tempo of each style, bpm
    metrics: dict  # from training (held-out perplexity, ...)
    device: str
    guided: bool = False  # trained with windows of no style: style_strength applies
    drum_model: Any = None  # a MusicTransformer for some drum styles alone (same tokens), or None
    drum_model_styles: tuple[str, ...] = ()  # the drum styles drum_model samples
    guard: Any = None  # an engine.originality.CopyGuard of the training pieces, or None
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def model_for(self, style: str) -> Any:
        """The network that samples `style`: the drum model for the drum styles it learnt."""
        if style in self.drum_model_styles and self.drum_model is not None:
            return self.drum_model
        return self.model


def default_checkpoint() -> Path:
    """The generator checkpoint used by default ($MUSIC_STUDIO_GENERATOR overrides)."""
    return Path(os.environ.get(CHECKPOINT_ENV) or CHECKPOINTS / CHECKPOINT_NAME)


def default_device() -> str:
    """ "cuda" when a GPU is present, else "cpu"."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_generator(checkpoint: str | Path | None = None, *, device: str | None = None) -> Generator:
    """Load a generator checkpoint and the tokenizer JSON beside it.

    Args:
        checkpoint: a generator.pt (default: `default_checkpoint()`).
        device: "cpu" or "cuda" (default: `default_device()`).

    Raises:
        ModelUnavailable: when the weights or the tokenizer are missing or unreadable, or do
            not belong together.
    """
    from engine.midi import TOKENIZER_FILE, load_tokenizer
    from engine.models.generator import MusicTransformer

    path = Path(checkpoint) if checkpoint is not None else default_checkpoint()
    device = device or default_device()
    model, meta = MusicTransformer.from_checkpoint(path, device=device)
    tokenizer_path = path.parent / TOKENIZER_FILE
    try:
        tokenizer = load_tokenizer(tokenizer_path)
    except (FileNotFoundError, ValueError, KeyError, json.JSONDecodeError) as err:
        raise ModelUnavailable(
            f"The generator's tokenizer {tokenizer_path} is missing or unreadable ({err})."
        ) from None
    vocab = [tokenizer[i] for i in range(len(tokenizer.vocab))]
    if vocab != list(meta.get("vocab", [])):
        raise ModelUnavailable(
            f"{tokenizer_path} does not match the vocabulary {path} was trained with; "
            "ship them together."
        )
    styles = tuple(meta.get("styles") or STYLES)
    tempos = {s: float(t) for s, t in (meta.get("style_tempos") or {}).items()}
    guided = float(meta.get("style_dropout") or 0.0) > 0.0
    metrics = dict(meta.get("metrics") or {})
    drum_model, drum_styles = None, ()
    drum_path = path.with_name(DRUM_CHECKPOINT_NAME)
    if drum_path.is_file():
        drum_model, drum_meta = MusicTransformer.from_checkpoint(drum_path, device=device)
        if list(drum_meta.get("vocab", [])) != vocab:
            raise ModelUnavailable(
                f"{drum_path} was trained with another vocabulary than {path}; ship them together."
            )
        guided &= float(drum_meta.get("style_dropout") or 0.0) > 0.0
        drum_styles = tuple(s for s in drum_meta.get("styles") or DRUM_STYLES if s in DRUM_STYLES)
        perplexity = (drum_meta.get("metrics") or {}).get("heldout_perplexity", {})
        metrics["heldout_perplexity"] = {  # each style's from the model that samples it
            **metrics.get("heldout_perplexity", {}),
            **{s: v for s, v in perplexity.items() if s in drum_styles},
        }
    return Generator(
        model=model,
        tokenizer=tokenizer,
        styles=styles,
        style_tempos=tempos,
        metrics=metrics,
        device=device,
        guided=guided,
        drum_model=drum_model,
        drum_model_styles=drum_styles,
        guard=_load_guard(path.parent),
    )


def _load_guard(folder: Path) -> Any:
    """The originality guard beside the checkpoints, or None (logged) when there is none."""
    from engine.originality import GUARD_FILE, CopyGuard

    path = folder / GUARD_FILE
    if not path.is_file():
        log.info("no %s beside the generator: pieces are not checked for copies", GUARD_FILE)
        return None
    return CopyGuard.load(path)


def load_markov(path: str | Path | None = None) -> Generator:
    """Load the Markov-chain baseline as a `Generator` that `generate` can drive.

    Args:
        path: a markov.npz (default: checkpoints/markov.npz beside the generator).

    Raises:
        ModelUnavailable: when the chain or the tokenizer beside it is missing or unreadable.
    """
    from engine.markov import MarkovChain
    from engine.midi import TOKENIZER_FILE, load_tokenizer

    path = Path(path) if path is not None else default_checkpoint().parent / MARKOV_NAME
    chain, meta = MarkovChain.from_checkpoint(path)
    try:
        tokenizer = load_tokenizer(path.parent / TOKENIZER_FILE)
    except (FileNotFoundError, ValueError, KeyError, json.JSONDecodeError) as err:
        raise ModelUnavailable(f"The tokenizer beside {path} is missing ({err}).") from None
    if [tokenizer[i] for i in range(len(tokenizer.vocab))] != meta.get("vocab"):
        raise ModelUnavailable(f"The tokenizer beside {path} does not match the chain's.")
    styles = tuple(tokenizer[i][len("Style_") :].replace("-", " ") for i in sorted(chain.tables))
    return Generator(
        model=chain,
        tokenizer=tokenizer,
        styles=styles,
        style_tempos={s: float(t) for s, t in (meta.get("style_tempos") or {}).items()},
        metrics=dict(meta.get("metrics") or {}),
        device="cpu",
        guard=_load_guard(path.parent),
    )


_default: dict[str, Generator] = {}
_default_lock = threading.Lock()


def default_generator() -> Generator:
    """The shipped generator, loaded once per process."""
    key = str(default_checkpoint())
    with _default_lock:
        if key not in _default:
            _default[key] = load_generator()
        return _default[key]


def styles() -> list[str]:
    """The styles the shipped generator can play (read from its tokenizer; STYLES without it)."""
    from engine.midi import STYLE_PREFIX, TOKENIZER_FILE

    path = default_checkpoint().parent / TOKENIZER_FILE
    try:
        special = json.loads(path.read_text())["config"]["special_tokens"]
    except (OSError, ValueError, KeyError, TypeError):
        return list(STYLES)
    found = [
        t[len(STYLE_PREFIX) :].replace("-", " ") for t in special if t.startswith(STYLE_PREFIX)
    ]
    return found or list(STYLES)


# --------------------------------------------------------------------------------------------
# Held-out pieces shipped for prompts and comparison


@dataclass(frozen=True)
class HeldoutPiece:
    """A real piece the generator never trained on, shipped as a short MIDI excerpt."""

    piece_id: str  # e.g. "folk/nottingham/jigs12"
    style: str
    title: str
    source: str  # collection it comes from
    licence: str
    path: Path  # the MIDI excerpt


def heldout_pieces(
    style: str | None = None, folder: str | Path | None = None
) -> list[HeldoutPiece]:
    """Shipped held-out pieces, optionally of one style (empty when none are shipped)."""
    root = Path(folder) if folder is not None else default_checkpoint().parent / HELDOUT_DIR
    index = root / "index.json"
    if not index.is_file():
        return []
    rows = json.loads(index.read_text())
    wanted = normalise_style(style) if style else None
    return [
        HeldoutPiece(
            piece_id=row["piece_id"],
            style=row["style"],
            title=row.get("title", row["piece_id"]),
            source=row.get("source", ""),
            licence=row.get("licence", ""),
            path=root / row["file"],
        )
        for row in rows
        if wanted is None or row["style"] == wanted
    ]


def _prompt_bytes(settings: GenerationSettings) -> tuple[bytes | str | Path | None, str]:
    if settings.prompt_piece is not None:
        pieces = {p.piece_id: p for p in heldout_pieces()}
        if settings.prompt_piece not in pieces:
            examples = ", ".join(list(pieces)[:5]) or "none are shipped"
            raise InvalidSettings(
                f"Unknown held-out piece {settings.prompt_piece!r}; for example: {examples}."
            )
        return pieces[settings.prompt_piece].path, settings.prompt_piece
    if isinstance(settings.prompt, str | Path):
        return settings.prompt, Path(settings.prompt).name
    return settings.prompt, "The prompt MIDI"


# --------------------------------------------------------------------------------------------
# Generation


# What may follow each kind of token in a REMI stream (programs in one stream, drums without
# durations). Sampling only from these keeps every generated piece well formed.
_FOLLOWS: dict[str, tuple[str, ...]] = {
    "start": ("Bar",),
    "Bar": ("TimeSig",),
    "TimeSig": ("Position", "Bar"),
    "Position": ("Tempo", "Program", "ProgramDrum"),
    "Tempo": ("Program", "ProgramDrum", "Position", "Bar"),
    "Program": ("Pitch",),
    "ProgramDrum": ("PitchDrum",),
    "Pitch": ("Velocity",),
    "PitchDrum": ("VelocityDrum",),
    "Velocity": ("Duration",),
    "VelocityDrum": ("Program", "ProgramDrum", "Position", "Bar"),
    "Duration": ("Program", "ProgramDrum", "Position", "Bar"),
}


class _Grammar:
    """The kind of every token, and masks of the kinds allowed after each kind."""

    def __init__(self, tokenizer: Any) -> None:
        vocab = tokenizer.vocab
        self.size = len(vocab)
        self.kind = ["special"] * self.size
        self.position: dict[int, int] = {}
        self.bar_quarters: dict[int, float] = {}  # TimeSig id -> bar length in quarters
        self.bar_positions: dict[int, int] = {}  # TimeSig id -> Position tokens in a bar
        for token, i in vocab.items():
            kind, _, value = token.partition("_")
            if token == "Program_-1":
                kind = "ProgramDrum"
            elif kind == "Position":
                self.position[i] = int(value)
            elif kind == "TimeSig":
                num, denom = value.split("/")
                self.bar_quarters[i] = int(num) * 4 / int(denom)
                # miditok counts positions in beats of the denominator's note value
                self.bar_positions[i] = int(num) * int(max(tokenizer.config.beat_res.values()))
            self.kind[i] = kind if kind in _FOLLOWS or kind == "Velocity" else "special"
        self.bar = vocab["Bar_None"]
        self.per_beat = int(max(tokenizer.config.beat_res.values()))
        self.tempo_ids = np.array([i for i, k in enumerate(self.kind) if k == "Tempo"], int)
        self.signature_ids = np.array(sorted(self.bar_quarters), int)
        self.position_ids = np.array(sorted(self.position), int)
        self.position_values = np.array([self.position[i] for i in sorted(self.position)], int)
        kinds = {k: np.array([x == k for x in self.kind]) for k in set(self.kind)}
        self.allowed: dict[str, np.ndarray] = {}
        for state, follows in _FOLLOWS.items():
            mask = np.zeros(self.size, dtype=bool)
            for kind in follows:
                mask |= kinds.get("Velocity" if kind == "VelocityDrum" else kind, mask & False)
            self.allowed[state] = mask


class _Constraint:
    """Follows a token stream (bars, metre, position, grammar) and says what may come next."""

    def __init__(self, grammar: _Grammar, banned: np.ndarray, signature: int | None) -> None:
        self.grammar = grammar
        self.banned = banned  # bool mask of tokens never allowed
        self.state = "start"
        self.bars: list[float] = []  # length in quarters of every bar begun
        self.bar_positions = 4 * grammar.per_beat  # Position tokens in the current bar
        self.position = -1  # last Position in the current bar
        self.signature = signature  # the one time signature allowed, once known
        self.tempo_seen = False

    def feed(self, token: int) -> None:
        """Advance over one token of the piece."""
        g = self.grammar
        kind = g.kind[token]
        if kind == "Bar":
            self.bars.append(self.bars[-1] if self.bars else 4.0)
            self.position = -1
        elif kind == "TimeSig":
            if self.bars:
                self.bars[-1] = g.bar_quarters[token]
            self.bar_positions = g.bar_positions[token]
            if self.signature is None:
                self.signature = token
        elif kind == "Position":
            self.position = g.position[token]
        elif kind == "Tempo":
            self.tempo_seen = True
        if kind == "Velocity":
            kind = "VelocityDrum" if self.state == "PitchDrum" else "Velocity"
        self.state = kind if kind in _FOLLOWS else "special"

    @property
    def completed_quarters(self) -> float:
        """Quarters in every bar but the one in progress."""
        return float(sum(self.bars[:-1]))

    def bias(self) -> np.ndarray:
        """0 for tokens allowed next, -inf for the rest."""
        g = self.grammar
        allowed = g.allowed.get(self.state)
        allowed = ~self.banned if allowed is None else allowed & ~self.banned
        if self.tempo_seen:
            allowed[g.tempo_ids] = False
        if self.signature is not None:
            keep = bool(allowed[self.signature])
            allowed[g.signature_ids] = False
            allowed[self.signature] = keep
        outside = g.position_values <= self.position
        outside |= g.position_values >= self.bar_positions
        allowed[g.position_ids[outside]] = False
        if not allowed.any():  # never a dead end: a new bar is always possible
            allowed[g.bar] = True
        return np.where(allowed, 0.0, -math.inf)


def _banned(gen: Generator, style: str, tempo_id: int) -> np.ndarray:
    """Tokens the piece must not contain: specials, other tempos, programs of the other kind."""
    vocab = gen.tokenizer.vocab
    banned = np.zeros(len(vocab), dtype=bool)
    for token, i in vocab.items():
        out = i in gen.tokenizer.special_tokens_ids
        out |= token.startswith("Tempo_") and i != tempo_id
        if token.startswith("Program_"):
            out |= (token == "Program_-1") != (style in DRUM_STYLES)
        banned[i] = out
    return banned


def _prompt_tokens(
    gen: Generator, prompt: bytes | str | Path, name: str, bars: int
) -> tuple[list[int], float]:
    """Tokens of the first `bars` bars of a prompt, and its first tempo.

    Raises:
        InvalidMidi: when the prompt cannot be read or holds no notes.
    """
    from engine.midi import encode, first_tempo, load_score

    score = load_score(prompt, name=name)
    try:
        ids = encode(gen.tokenizer, score)
    except Exception as err:  # miditok rejects some odd files late
        raise InvalidMidi(f"{name} could not be turned into notes ({err}).") from None
    bar = gen.tokenizer.vocab["Bar_None"]
    starts = [i for i, t in enumerate(ids) if t == bar]
    if len(starts) > bars:
        ids = ids[: starts[bars]]
    if not any(gen.tokenizer[t].startswith(("Pitch", "PitchDrum")) for t in ids):
        raise InvalidMidi(f"{name} holds no notes in its first {bars} bars.")
    return ids, first_tempo(score)


def _sample_part(
    gen: Generator,
    style: str,
    tempo: float,
    prompt_ids: list[int],
    quarters: float | None,
    bars: int | None,
    settings: GenerationSettings,
    seed: int | tuple[int, int],
    time_signature: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> tuple[list[int], float, float, int | None]:
    """Sample one part (`seed` seeds its random generator).

    Returns:
        (tokens after the conditioning, prompt length and end in quarters, time signature id).
    """
    from engine.midi import NO_STYLE_TOKEN, style_token, tempo_token
    from engine.models.generator import SamplingParams

    tokenizer = gen.tokenizer
    grammar = _grammar(gen)
    tempo_id = tempo_token(tokenizer, tempo)
    # The prompt plays at the chosen tempo: its own tempo tokens give way to the conditioning.
    body = [tempo_id if grammar.kind[t] == "Tempo" else t for t in prompt_ids]
    prefix = [tokenizer.vocab[style_token(style)], tempo_id, *body]
    constraint = _Constraint(grammar, _banned(gen, style, tempo_id), time_signature)
    for token in body:
        constraint.feed(token)
    constraint.state = "start"  # the new music begins on a bar line of its own
    prompt_quarters = float(sum(constraint.bars))
    prompt_bars = len(constraint.bars)

    def stop(token: int) -> bool:
        constraint.feed(token)
        if token != grammar.bar:
            return False
        if bars is not None:
            fraction = (len(constraint.bars) - 1 - prompt_bars) / bars
        else:
            assert quarters is not None
            fraction = (constraint.completed_quarters - prompt_quarters) / quarters
        if progress is not None:
            progress(min(1.0, max(0.0, fraction)))
        return fraction >= 1.0

    beats = quarters if quarters is not None else (bars or 1) * 6.0
    params = SamplingParams(
        temperature=settings.temperature,
        top_p=settings.top_p,
        guidance=settings.style_strength,
        max_new_tokens=int(beats * TOKENS_PER_BEAT_CAP) + 256,
    )
    guide = {"unconditioned": tokenizer.vocab[NO_STYLE_TOKEN]} if gen.guided else {}
    new = gen.model_for(style).generate(
        prefix,
        params=params,
        generator=np.random.default_rng(seed),
        keep=2,
        window_starts={grammar.bar},
        logit_bias=constraint.bias,
        stop=stop,
        **guide,
    )
    finished = bool(new) and new[-1] == grammar.bar
    end = constraint.completed_quarters if finished else float(sum(constraint.bars))
    if bars is None and quarters is not None:
        end = min(end, prompt_quarters + quarters)
    return body + new, prompt_quarters, end, constraint.signature


def _original_part(
    gen: Generator,
    style: str,
    seed: int,
    sample: Callable[[int | tuple[int, int]], tuple[list[int], float, float, int | None]],
) -> tuple[Any, float, float, int | None, int, bool]:
    """Sample one part of `style` (`sample(seed)`: `_sample_part` with all but the seed set),
    and draw it again (up to ORIGINALITY_DRAWS times in all, draw d seeded by (seed, d)) while
    its new notes replay a run of a training piece of `style` that the generator's guard knows.

    Returns:
        (the part as a score, prompt length and end in quarters, time signature id, draws made,
        whether the last draw still replays a training piece).
    """
    from engine.midi import decode
    from engine.originality import interval_symbols, piece_notes

    for draw in range(ORIGINALITY_DRAWS):
        ids, prompt_quarters, end, signature = sample(seed if draw == 0 else (seed, draw))
        score = decode(gen.tokenizer, ids)
        if gen.guard is None:
            return score, prompt_quarters, end, signature, draw + 1, False
        notes = piece_notes(score, drums=style in DRUM_STYLES)
        new = (notes.onsets >= prompt_quarters) & (notes.onsets < end)
        copies = gen.guard.copies(
            style, interval_symbols(notes.onset_steps[new], notes.pitches[new])
        )
        if not copies:
            break
    return score, prompt_quarters, end, signature, draw + 1, copies


_grammars: dict[int, _Grammar] = {}


def _grammar(gen: Generator) -> _Grammar:
    key = id(gen.tokenizer)
    if key not in _grammars:
        _grammars[key] = _Grammar(gen.tokenizer)
    return _grammars[key]


def _finish_score(score: Any, tempo: float, end_quarters: float, instrument: int | None) -> Any:
    """One exact tempo, nothing past the end, and the chosen instrument."""
    import symusic

    tpq = score.ticks_per_quarter
    end = int(round(end_quarters * tpq))
    score.tempos = symusic.Score(tpq).tempos
    score.tempos.append(symusic.Tempo(0, float(tempo)))
    kept = []
    for track in score.tracks:
        notes = track.notes.numpy()
        inside = notes["time"] < end
        duration = np.minimum(notes["duration"][inside], end - notes["time"][inside])
        track.notes = symusic.Note.from_numpy(
            time=notes["time"][inside],
            duration=np.maximum(duration, 1).astype(notes["duration"].dtype),
            pitch=notes["pitch"][inside],
            velocity=notes["velocity"][inside],
        )
        if instrument is not None and not track.is_drum:
            track.program = instrument
        if track.note_num():
            kept.append(track)
    score.tracks = type(score.tracks)(kept)
    return score


def generate(
    settings: GenerationSettings,
    generator: Generator | None = None,
    *,
    render: bool = True,
    soundfont: str | Path | None = None,
    progress: Callable[[float], None] | None = None,
) -> GenerationResult:
    """Generate music as the settings ask.

    Args:
        settings: style, length, tempo, sampling, seed, variations, instrument, prompt.
        generator: a loaded generator (default: the shipped one, loaded once).
        render: also render audio with FluidSynth.
        soundfont: soundfont for rendering (default: the best installed).
        progress: called with the fraction done (0..1) as the music grows.

    Returns:
        The pieces (MIDI bytes, audio, piano roll each), the validated settings, time taken.

    Raises:
        InvalidSettings: for an unknown style or a control out of range.
        InvalidMidi: for a prompt file that cannot be read or holds no notes.
        ModelUnavailable: when the generator's checkpoint is missing.
    """
    from engine.audio import SAMPLE_RATE
    from engine.midi import piano_roll, score_to_bytes

    started = time.perf_counter()
    settings = settings.validated(generator.styles if generator is not None else styles())
    gen = generator if generator is not None else default_generator()
    warnings: list[str] = []
    prompt, prompt_name = _prompt_bytes(settings)
    prompt_ids: list[int] = []
    prompt_tempo: float | None = None
    if prompt is not None:
        prompt_ids, prompt_tempo = _prompt_tokens(gen, prompt, prompt_name, settings.prompt_bars)
    tempo = settings.tempo
    if tempo is None:
        tempo = prompt_tempo or gen.style_tempos.get(settings.style, 120.0)
        tempo = float(np.clip(tempo, *TEMPO_RANGE))
    quarters = settings.seconds * tempo / 60.0 if settings.seconds is not None else None
    pieces = []
    total = settings.variations

    with gen.lock:
        for k in range(total):
            seed = settings.seed + k

            def step(fraction: float, k: int = k) -> None:
                if progress is not None:
                    share = 0.5 if settings.drums else 1.0
                    progress((k + fraction * share) / total)

            sample = partial(_sample_part, gen, settings.style, tempo, prompt_ids, quarters,
                             settings.bars, settings, progress=step)  # fmt: skip
            score, prompt_quarters, end, signature, draws, copies = _original_part(
                gen, settings.style, seed, sample
            )
            if settings.drums:

                def drum_step(fraction: float, k: int = k) -> None:
                    if progress is not None:
                        progress((k + 0.5 + fraction / 2) / total)

                sample = partial(
                    _sample_part, gen, settings.drums, tempo, [], end, None, settings,
                    time_signature=signature, progress=drum_step,
                )  # fmt: skip
                drums, _, _, _, drum_draws, drum_copies = _original_part(
                    gen, settings.drums, seed + 1_000_003, sample
                )
                draws, copies = max(draws, drum_draws), copies or drum_copies
                for track in drums.tracks:
                    score.tracks.append(track)
            if copies:
                warnings.append(
                    f"Variation {k + 1} (seed {seed}) still plays {gen.guard.limit} notes in a row "
                    f"of a training piece after {ORIGINALITY_DRAWS} draws; try another seed."
                )
            score = _finish_score(score, tempo, end, settings.instrument)
            if score.note_num() == 0:
                raise EngineError(
                    "The generator produced no notes; try another seed or a higher temperature."
                )
            midi = score_to_bytes(score)
            audio = None
            if render:
                audio, warning = _render(midi, soundfont)
                if warning and warning not in warnings:
                    warnings.append(warning)
            pieces.append(
                GeneratedPiece(
                    midi=midi,
                    audio=audio,
                    sample_rate=SAMPLE_RATE,
                    piano_roll=piano_roll(midi),
                    seconds=end * 60.0 / tempo,
                    prompt_seconds=prompt_quarters * 60.0 / tempo,
                    seed=seed,
                    tempo=tempo,
                    draws=draws,
                )
            )
    if progress is not None:
        progress(1.0)
    return GenerationResult(
        pieces=tuple(pieces),
        settings=settings,
        seconds_taken=time.perf_counter() - started,
        device=gen.device,
        warnings=tuple(warnings),
    )


def _render(midi: bytes, soundfont: str | Path | None) -> tuple[np.ndarray | None, str]:
    """Audio of the MIDI, or None and why not (the MIDI is still good without it)."""
    from engine.errors import RenderingUnavailable
    from engine.synth import render_midi

    try:
        return render_midi(midi, soundfont=soundfont), ""
    except RenderingUnavailable as err:
        return None, f"No audio: {err} The MIDI file is still available."
