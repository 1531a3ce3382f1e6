"""Train the music generator on the corpus of engine.train.generator_data.

    nice -n 10 python -m engine.train.generator --data ../shared/data --minutes 85

Each training example is a window of one piece that starts at a bar line, prefixed by the
piece's style token and the tempo token in effect there. Styles are drawn with probability
proportional to the square root of their token count, so small styles (chinese folk, hiphop)
are seen often without being replayed into memory. Melodic windows are transposed by a random
interval (-5..+6 semitones). The run is seeded and resumable: its full state (weights,
optimizer, data sampler, step) is saved every few minutes and picked up on the next start.
Every evaluation writes the slim shipped checkpoint (checkpoints/generator.pt), the tokenizer
JSON beside it and the model card (checkpoints/generator.md) with held-out perplexity per style.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import textwrap
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.errors import ModelUnavailable
from engine.generate import CHECKPOINT_NAME, DRUM_CHECKPOINT_NAME, DRUM_STYLES, STYLES
from engine.midi import NO_STYLE_TOKEN, TOKENIZER_FILE, style_token
from engine.models.generator import GeneratorConfig, MusicTransformer
from engine.train.dataset import default_cache_dir
from engine.train.generator_data import (
    HELDOUT_FRACTION,
    STYLE_SOURCES,
    CorpusConfig,
    TokenisedPiece,
    build,
    corpus_dir,
    tokenise,
)

log = logging.getLogger("engine.train.generator")

DEFAULT_CHECKPOINTS = Path("checkpoints")
EVALUATION_HEADING = "## Evaluation"  # the card's bench/generation.py figures, kept on rewrites
STATE_SUFFIX = "_train_state.pt"  # the resumable state, in the corpus cache folder, after the name
FINETUNE_STATE_SUFFIX = "_finetune_state.pt"  # that of a run with `init` weights
TRANSPOSE = (-5, 6)  # semitone range of the random transposition of melodic windows
PREFIX = 2  # conditioning tokens: style, tempo


@dataclass(frozen=True)
class TrainConfig:
    """One training run; stored in the resumable state and the model card."""

    seed: int = 0  # weights, data order and augmentation follow from it
    steps: int = 3600  # most optimizer steps
    minutes: float = 85.0  # wall-time budget of the whole run (over resumes); the learning
    # rate decays by whichever of steps and minutes runs out first
    batch: int = 8  # windows per step
    context: int = 384  # tokens per window, conditioning included
    layers: int = 4
    heads: int = 4
    width: int = 192
    dropout: float = 0.1
    style_dropout: float = 0.1  # share of windows conditioned on NO_STYLE_TOKEN instead of their
    # style: the model also learns music of no named style, which sampling contrasts with the
    # chosen style (classifier-free guidance)
    lr: float = 1e-3  # peak learning rate (AdamW)
    warmup: int = 150  # steps of linear warm-up before the cosine decay
    weight_decay: float = 0.1
    eval_every: int = 300  # steps between held-out evaluations (each writes the checkpoint)
    eval_tokens: int = 6000  # held-out tokens scored per style at each evaluation
    save_minutes: float = 5.0  # wall time between saves of the resumable state
    threads: int = 1  # torch threads: the machine is shared
    style_power: float = 0.5  # styles are drawn in proportion to their token count to this
    # power: 1 as the corpus has them, 0.5 small styles more often, 0 all styles equally
    init: str = ""  # a generator checkpoint whose weights start the run (fine-tuning); "" for
    # random weights
    piece_power: float = 1.0  # within a style, pieces are drawn in proportion to their token
    # count to this power: 1 every token alike, 0 every piece alike
    styles: str = ""  # comma-separated styles to train on (e.g. the drum styles); "" for all
    name: str = Path(CHECKPOINT_NAME).stem  # the checkpoint is written as NAME.pt, its card NAME.md


# --------------------------------------------------------------------------------------------
# Data: windows of pieces with their conditioning


def _draw_weights(token_counts: Sequence[int], power: float) -> np.ndarray:
    """Probabilities in proportion to the token counts to `power` (0: all alike)."""
    weights = np.asarray(token_counts, dtype=np.float64) ** power
    return weights / weights.sum()


class Windows:
    """Draws training windows and makes the fixed held-out evaluation windows."""

    def __init__(
        self,
        pieces: Sequence[TokenisedPiece],
        tokenizer,
        context: int,
        style_dropout: float = 0.0,
        style_power: float = 0.5,
        piece_power: float = 1.0,
    ) -> None:
        self.context = context
        self.style_dropout = style_dropout
        self.no_style = tokenizer.vocab[NO_STYLE_TOKEN]
        self.vocab = tokenizer.vocab
        self.pad = self.vocab["PAD_None"]
        self.eos = self.vocab["EOS_None"]
        self.bar = self.vocab["Bar_None"]
        self.style_ids = {s: self.vocab[style_token(s)] for s in STYLES}
        tempo_ids = np.array(sorted(i for t, i in self.vocab.items() if t.startswith("Tempo_")))
        self.is_tempo = np.zeros(len(self.vocab), dtype=bool)
        self.is_tempo[tempo_ids] = True
        self.default_tempo = int(tempo_ids[len(tempo_ids) // 2])
        self.shift = self._transpositions(tokenizer)
        self.train = {s: [p for p in pieces if p.piece.style == s and p.piece.split == "train"]
                      for s in STYLES}  # fmt: skip
        self.heldout = {s: [p for p in pieces if p.piece.style == s and p.piece.split != "train"]
                        for s in STYLES}  # fmt: skip
        self.bars = {id(p): np.flatnonzero(p.ids == self.bar) for p in pieces}
        tokens = {s: sum(len(p.ids) for p in self.train[s]) for s in STYLES}
        self.styles = [s for s in STYLES if tokens[s]]
        self.style_weights = _draw_weights([tokens[s] for s in self.styles], style_power)
        self.piece_weights = {
            s: _draw_weights([len(p.ids) for p in self.train[s]], piece_power) for s in self.styles
        }

    def _transpositions(self, tokenizer) -> dict[int, np.ndarray]:
        """Per semitone shift: id -> id of the shifted Pitch token, -1 when off the range."""
        size = len(self.vocab)
        out = {}
        for k in range(TRANSPOSE[0], TRANSPOSE[1] + 1):
            table = np.arange(size)
            for token, i in self.vocab.items():
                if token.startswith("Pitch_"):
                    table[i] = self.vocab.get(f"Pitch_{int(token[6:]) + k}", -1)
            out[k] = table
        return out

    def _tempo_at(self, ids: np.ndarray, start: int) -> int:
        before = np.flatnonzero(self.is_tempo[ids[: start + 8]])  # the first bar's tempo too
        return int(ids[before[-1]]) if len(before) else self.default_tempo

    def window(self, piece: TokenisedPiece, start: int, transpose: int = 0) -> np.ndarray:
        """Conditioning + tokens from `start` (+ EOS at the piece's end), padded to context."""
        body = piece.ids[start : start + self.context - PREFIX].astype(np.int64)
        if len(body) < self.context - PREFIX:
            body = np.append(body, self.eos)
        if transpose:
            shifted = self.shift[transpose][body]
            if (shifted >= 0).all():
                body = shifted
        prefix = [self.style_ids[piece.piece.style], self._tempo_at(piece.ids, start)]
        out = np.full(self.context, self.pad, dtype=np.int64)
        out[:PREFIX] = prefix
        out[PREFIX : PREFIX + len(body)] = body[: self.context - PREFIX]
        return out

    def sample(self, rng: np.random.Generator, batch: int) -> torch.Tensor:
        """A batch of random training windows."""
        rows = []
        for _ in range(batch):
            style = self.styles[int(rng.choice(len(self.styles), p=self.style_weights))]
            pieces = self.train[style]
            piece = pieces[int(rng.choice(len(pieces), p=self.piece_weights[style]))]
            bars = self.bars[id(piece)]
            # Starts late in the piece are rarer: a window should be mostly music, not padding.
            usable = bars[bars < max(1, len(piece.ids) - self.context // 2)]
            start = int(rng.choice(usable)) if len(usable) else 0
            if rng.random() < 0.1:
                start = 0  # beginnings matter: every generation starts at one
            shift = 0
            if style not in DRUM_STYLES:
                shift = int(rng.integers(TRANSPOSE[0], TRANSPOSE[1] + 1))
            row = self.window(piece, start, shift)
            if rng.random() < self.style_dropout:
                row[0] = self.no_style
            rows.append(row)
        return torch.from_numpy(np.stack(rows))

    def evaluation(self, tokens_per_style: int) -> dict[str, torch.Tensor]:
        """Fixed held-out windows per style: consecutive windows of each piece, from its start."""
        out = {}
        for style in STYLES:
            rows, total = [], 0
            for piece in self.heldout[style]:
                start = 0
                while start < len(piece.ids) and total < tokens_per_style:
                    rows.append(self.window(piece, start))
                    total += min(len(piece.ids) - start, self.context - PREFIX)
                    bars = self.bars[id(piece)]
                    later = bars[bars >= start + self.context - PREFIX - 64]
                    if not len(later):
                        break
                    start = int(later[0])
                if total >= tokens_per_style:
                    break
            if rows:
                out[style] = torch.from_numpy(np.stack(rows))
        return out


# --------------------------------------------------------------------------------------------
# Training


def loss_of(model: MusicTransformer, batch: torch.Tensor, pad: int) -> tuple[torch.Tensor, int]:
    """Mean next-token cross-entropy over non-padding targets, and their count."""
    logits = model(batch[:, :-1])
    targets = batch[:, 1:]
    loss = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=pad
    )
    return loss, int((targets != pad).sum())


@torch.no_grad()
def heldout_perplexity(
    model: MusicTransformer, windows: dict[str, torch.Tensor], pad: int, batch: int = 8
) -> dict[str, float]:
    """Perplexity per style over the held-out windows (the tempo token after the style
    token counts too)."""
    model.eval()
    out = {}
    for style, rows in windows.items():
        total, count = 0.0, 0
        for i in range(0, len(rows), batch):
            loss, n = loss_of(model, rows[i : i + batch], pad)
            total += float(loss) * n
            count += n
        out[style] = round(math.exp(total / max(count, 1)), 3)
    model.train()
    return out


def learning_rate(step: int, config: TrainConfig, seconds: float = 0.0) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak.

    The decay follows steps or wall time (`seconds` of `config.minutes`), whichever is further
    along, so a run cut short by its time budget on a busy machine still ends annealed.
    """
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    by_steps = (step - config.warmup) / max(1, config.steps - config.warmup)
    progress = min(1.0, max(by_steps, seconds / (config.minutes * 60)))
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _optimizer(model: MusicTransformer, config: TrainConfig) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    rest = [p for n, p in model.named_parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": rest}],
        lr=config.lr,
        betas=(0.9, 0.95),
    )


def state_name(name: str, *, fine_tuned: bool) -> str:
    """File name of the resumable state of run `name` (a fine-tuning run has its own)."""
    return name + (FINETUNE_STATE_SUFFIX if fine_tuned else STATE_SUFFIX)


def trained_styles(config: TrainConfig) -> tuple[str, ...]:
    """The styles a run trains on, in STYLES order.

    Raises:
        ValueError: for a name that is not a style.
    """
    names = [s.strip() for s in config.styles.split(",") if s.strip()]
    unknown = [s for s in names if s not in STYLES]
    if unknown:
        raise ValueError(f"unknown styles {unknown}; choose from {', '.join(STYLES)}")
    return tuple(s for s in STYLES if not names or s in names)


def style_tempos(pieces: Sequence[TokenisedPiece]) -> dict[str, float]:
    """Median first tempo of each style's training pieces: the default tempo of a style."""
    out = {}
    for style in STYLES:
        tempos = [
            p.piece.tempo for p in pieces if p.piece.style == style and p.piece.split == "train"
        ]
        out[style] = round(float(np.median(tempos)), 1) if tempos else 120.0
    return out


def corpus_summary(pieces: Sequence[TokenisedPiece]) -> dict[str, dict[str, int]]:
    """Pieces and tokens per style and split."""
    out: dict[str, dict[str, int]] = {}
    for style in STYLES:
        chosen = [p for p in pieces if p.piece.style == style]
        out[style] = {
            "train_pieces": sum(p.piece.split == "train" for p in chosen),
            "heldout_pieces": sum(p.piece.split != "train" for p in chosen),
            "train_tokens": int(sum(len(p.ids) for p in chosen if p.piece.split == "train")),
            "heldout_tokens": int(sum(len(p.ids) for p in chosen if p.piece.split != "train")),
        }
    return out


def initial_weights(path: Path, model_config: GeneratorConfig) -> dict[str, torch.Tensor]:
    """The weights of the generator checkpoint at `path`, for a fine-tuning run.

    Raises:
        ValueError: when it is not a generator of this run's shape.
    """
    try:
        model, _ = MusicTransformer.from_checkpoint(path)
    except ModelUnavailable as err:
        raise ValueError(str(err)) from None
    shape = {**asdict(model.config), "dropout": model_config.dropout}
    if shape != asdict(model_config):
        raise ValueError(
            f"{path} is a generator of another shape ({model.config}); this run needs "
            f"{model_config}"
        )
    return model.state_dict()


def train(
    config: TrainConfig,
    *,
    data_dir: Path,
    cache_dir: Path,
    checkpoints: Path,
    fresh: bool = False,
) -> dict:
    """Run (or resume) training; returns the last metrics.

    Args:
        config: the run's settings (a resumed run keeps its stored ones but `minutes` and
            `steps`, so a finished run can be extended).
        data_dir: the shared data folder (the corpus is built from it when missing).
        cache_dir: where the corpus and the resumable state live.
        checkpoints: where the shipped checkpoint, tokenizer and model card are written.
        fresh: ignore a saved state and start over.
    """
    from tqdm import tqdm

    torch.set_num_threads(config.threads)
    folder = corpus_dir(cache_dir)
    if not (folder / "index.json").is_file():
        build(CorpusConfig(data_dir=data_dir, cache_dir=cache_dir, seed=config.seed))
    tokenizer, pieces = tokenise(cache_dir)
    chosen = trained_styles(config)
    pieces = [p for p in pieces if p.piece.style in chosen]
    state_path = folder / state_name(config.name, fine_tuned=bool(config.init))
    state = None
    if state_path.is_file() and not fresh:
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        overrides = {"minutes": config.minutes, "steps": config.steps}  # to extend a run
        config = TrainConfig(**{**state["train_config"], **overrides})
        log.info("resuming from step %d (%s)", state["step"], state_path)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    windows = Windows(
        pieces, tokenizer, config.context, config.style_dropout, config.style_power,
        config.piece_power,
    )  # fmt: skip
    evaluation = windows.evaluation(config.eval_tokens)
    model_config = GeneratorConfig(
        vocab_size=len(tokenizer.vocab),
        context=config.context,
        layers=config.layers,
        heads=config.heads,
        width=config.width,
        dropout=config.dropout,
    )
    model = MusicTransformer(model_config)
    optimizer = _optimizer(model, config)
    step, tokens_seen, history, seconds_before = 0, 0, [], 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        step, tokens_seen, history = state["step"], state["tokens_seen"], state["history"]
        seconds_before = float(state.get("train_seconds", 0.0))
    elif config.init:
        model.load_state_dict(initial_weights(Path(config.init), model_config))
    summary = corpus_summary(pieces)
    tempos = style_tempos(pieces)
    checkpoints.mkdir(parents=True, exist_ok=True)
    tokenizer.save(checkpoints / TOKENIZER_FILE)

    def save_state() -> None:
        tmp = state_path.with_suffix(".tmp")
        torch.save(
            {
                "train_config": asdict(config),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "step": step,
                "tokens_seen": tokens_seen,
                "history": history,
                "train_seconds": seconds_before + time.monotonic() - started,
            },
            tmp,
        )
        tmp.replace(state_path)

    def evaluate_and_ship(train_loss: float) -> dict:
        perplexity = heldout_perplexity(model, evaluation, windows.pad)
        metrics = {
            "step": step,
            "tokens_seen": tokens_seen,
            "train_loss": round(train_loss, 4),
            "heldout_perplexity": perplexity,
        }
        history.append(metrics)
        model.eval()
        model.save(
            checkpoints / f"{config.name}.pt",
            vocab=[tokenizer[i] for i in range(len(tokenizer.vocab))],
            meta={
                "retrain": retrain_command(config),
                "styles": list(chosen),
                "style_tempos": {s: t for s, t in tempos.items() if s in chosen},
                "style_dropout": config.style_dropout,
                "metrics": metrics,
                "corpus": summary,
            },
        )
        model.train()
        write_model_card(
            checkpoints / f"{config.name}.md", config, model_config, metrics, summary, history
        )
        tqdm.write(json.dumps(metrics))
        return metrics

    started = time.monotonic()
    last_save = started
    smoothed = float("nan")
    metrics: dict = history[-1] if history else {}
    if config.init and state is None:
        metrics = evaluate_and_ship(float("nan"))  # where the fine-tuning starts from
    model.train()
    progress = tqdm(total=config.steps, initial=step, desc="generator", unit="step", smoothing=0.02)
    while step < config.steps:
        seconds = seconds_before + time.monotonic() - started
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config, seconds)
        batch = windows.sample(rng, config.batch)
        loss, count = loss_of(model, batch, windows.pad)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        tokens_seen += count
        value = loss.item()
        smoothed = value if math.isnan(smoothed) else 0.98 * smoothed + 0.02 * value
        progress.update()
        progress.set_postfix(loss=f"{smoothed:.3f}", lr=f"{group['lr']:.1e}")
        out_of_time = seconds_before + time.monotonic() - started > config.minutes * 60
        if step % config.eval_every == 0 or step == config.steps or out_of_time:
            metrics = evaluate_and_ship(smoothed)
        if time.monotonic() - last_save > config.save_minutes * 60 or out_of_time:
            save_state()
            last_save = time.monotonic()
        if out_of_time:
            tqdm.write(f"time budget of {config.minutes} minutes used up at step {step}")
            break
    progress.close()
    save_state()
    return metrics


LICENCES: tuple[tuple[str, str, frozenset[str]], ...] = (
    # (licence, sources, the styles they feed)
    (
        "public domain works; music21 corpus (BSD-3)",
        "Bach chorales; classical works (Beethoven, Mozart, Haydn, Schubert, Schumann, Chopin, "
        "Handel, Corelli, ...); Palestrina, Monteverdi, Josquin, Lusitano; O'Neill's 1850; "
        "Ryan's Mammoth Collection; Essen folk songs han1, han2 (Chinese tunes)",
        frozenset({"classical", "renaissance", "folk", "chinese folk"}),
    ),
    ("CC0", "OpenScore Lieder", frozenset({"classical"})),
    (
        "GPL-3",
        "Nottingham Music Database (cleaned by Jukedeck); in the shared copy only 59 of its "
        "1,034 files hold a melody (the rest only chords): only those 59 are used",
        frozenset({"folk"}),
    ),
    ("MIT", "POP909 (Music X Lab)", frozenset({"pop"})),
    (
        "CC BY 4.0",
        "Groove MIDI Dataset (Magenta): beats of the rock, funk, jazz, latin and hiphop styles",
        frozenset(DRUM_STYLES),
    ),
)


def licence_table(styles: Sequence[str]) -> str:
    """The card's table of the licences of the sources of `styles`."""
    rows = [f"| {lic} | {src} |" for lic, src, fed in LICENCES if fed & set(styles)]
    return "\n".join(["| licence | sources |", "|---|---|", *rows])


def _markov_perplexity(checkpoints: Path) -> dict[str, float]:
    """Held-out perplexity of the Markov baseline beside the generator, if it is there."""
    from engine.generate import MARKOV_NAME
    from engine.markov import MarkovChain

    try:
        _, header = MarkovChain.from_checkpoint(checkpoints / MARKOV_NAME)
    except Exception:  # no baseline yet: the card leaves the column out
        return {}
    return dict(header.get("metrics", {}).get("heldout_perplexity", {}))


def _evaluation_section(path: Path) -> str:
    """The card's evaluation section (figures from bench/generation.py), or "" without one."""
    text = path.read_text() if path.is_file() else ""
    start = text.find(f"\n{EVALUATION_HEADING}\n")
    if start < 0:
        return ""
    end = text.find("\n## ", start + 1)
    return text[start + 1 : end if end >= 0 else None].strip() + "\n\n"


def retrain_command(config: TrainConfig) -> str:
    """The command line of a run with `config` (its settings that differ from the defaults)."""
    defaults = asdict(TrainConfig())
    flags = "".join(
        f" --{name.replace('_', '-')} {value:g}" if isinstance(value, float) else
        f" --{name.replace('_', '-')} {value}"
        for name, value in asdict(config).items()
        if value != defaults[name]
    )  # fmt: skip
    return f"nice -n 10 .venv/bin/python -m engine.train.generator --data ../shared/data{flags}"


def _init_command(path: Path) -> str:
    """How the weights a fine-tuning run starts from were made, as a command line."""
    try:
        _, meta = MusicTransformer.from_checkpoint(path)
    except ModelUnavailable:
        meta = {}
    if "retrain" not in meta:
        return f"# first: the run that wrote {path} (see its model card)"
    return f"{meta['retrain']} --checkpoints {path.parent}"


def _init_text(config: TrainConfig) -> str:
    """The card's note on a fine-tuning run, after its commands ("" for a plain run)."""
    if not config.init:
        return ""
    text = (
        "The second command fine-tunes: it starts from the weights the first one wrote "
        f"({config.init}), with a fresh optimizer and learning-rate schedule; the training "
        "curve above starts there (step 0)."
    )
    return f"\n{textwrap.fill(text, 95)}\n"


def write_model_card(
    path: Path,
    config: TrainConfig,
    model_config: GeneratorConfig,
    metrics: dict,
    summary: dict[str, dict[str, int]],
    history: list[dict],
) -> None:
    """The generator's model card: data and licences, metrics, and how to retrain.

    An evaluation section already in the card (bench/generation.py's figures) is kept.
    """
    evaluation = _evaluation_section(path)
    chosen = trained_styles(config)
    params = sum(p.numel() for p in MusicTransformer(model_config).parameters())
    markov = _markov_perplexity(path.parent)
    perplexity = metrics["heldout_perplexity"]
    rows = "\n".join(
        f"| {s} | {c['train_pieces']} | {c['heldout_pieces']} | {c['train_tokens']:,} | "
        f"{perplexity.get(s, float('nan')):.2f} | {markov.get(s, float('nan')):.2f} |"
        for s, c in summary.items()
        if s in chosen
    )
    curve = "\n".join(
        f"| {h['step']} | {h['tokens_seen']:,} | "
        f"{'–' if math.isnan(h['train_loss']) else format(h['train_loss'], '.3f')} | "
        f"{np.exp(np.mean(np.log(list(h['heldout_perplexity'].values())))):.2f} |"
        for h in history
    )
    sources = "\n".join(
        f"- `{s.name}` -> {s.style}"
        + (f" (at most {s.cap} pieces, seeded choice)" if s.cap else "")
        for s in STYLE_SOURCES
        if s.style in chosen
    )
    retrain = retrain_command(config)
    if config.init:
        retrain = f"{_init_command(Path(config.init))}\n{retrain}"
    weights = path.with_suffix(".pt")
    size = weights.stat().st_size if weights.is_file() else 0
    scope = (
        ""
        if len(chosen) == len(STYLES)
        else "\n"
        + textwrap.fill(
            f"Trained on {', '.join(chosen)} alone. Saved as `{DRUM_CHECKPOINT_NAME}` beside "
            f"`{CHECKPOINT_NAME}` (same tokenizer), it is the model `engine.generate` samples "
            f"the drum styles among them with; every other style comes from `{CHECKPOINT_NAME}`.",
            95,
        )
        + "\n"
    )
    threads = f"{config.threads} thread" + ("s" if config.threads > 1 else "")
    text = f"""# Music generator (`{weights.name}`)

A decoder-only transformer over miditok REMI tokens (Program, Tempo and TimeSig tokens in one
stream, twelve positions per beat; tokenizer: `{TOKENIZER_FILE}`), conditioned on a style token
and a tempo token, sampled with a key/value cache and a token grammar that keeps every piece
well formed. {params / 1e6:.2f} M parameters ({model_config.layers} layers, width
{model_config.width}, {model_config.heads} heads, context {model_config.context} tokens);
{size / 2**20:.1f} MiB. Use: `engine.generate.generate(GenerationSettings(style=...))` or
`python -m engine generate --genre STYLE --seconds 30 --seed 0 --out piece.mid`.
{scope}
Style strength (classifier-free guidance): in training, {config.style_dropout:.0%} of the windows
carry the token of no style (`{NO_STYLE_TOKEN}`) instead of their own, so the model also learns
music of no named style. Sampling runs the chosen style and no style side by side (one batch of
two) and draws from u + s (c - u), where c and u are the two next-token log-probabilities and s
the style strength: 1 is plain conditioning, more leans further toward what sets the style
apart, 0 is music of no style. The app's default is chosen in the Evaluation section below.

## Data

Real music only, converted to MIDI and tokenised by `engine/train/generator_data.py` (cached in
$MUSIC_STUDIO_CACHE or ~/.cache/music-studio). {HELDOUT_FRACTION:.0%} of each style's pieces
(rounded up; the lowest hashes of the piece ids) are held out by piece and never trained on.

{sources}

{licence_table(chosen)}

## Held-out perplexity

Per token, on up to {config.eval_tokens:,} tokens of each style's held-out pieces (windows of
{config.context} tokens from each piece's start, the tempo token after the style token
included), at step {metrics["step"]} after {metrics["tokens_seen"]:,} training tokens (train loss
{metrics["train_loss"]:.3f}); the Markov-chain baseline (`markov.npz`, order-5 n-grams over the
same tokens and pieces, see `markov.md`) on the same windows.

| style | train pieces | held-out pieces | train tokens | ours | Markov |
|---|---|---|---|---|---|
{rows}

Training curve:

| step | tokens seen | train loss | held-out perplexity (geometric mean over styles) |
|---|---|---|---|
{curve}

{evaluation}## Training

Seeded (seed {config.seed}) and resumable, on the CPU with {threads}: batch
{config.batch} x {config.context} tokens, AdamW (peak lr {config.lr}, warm-up {config.warmup}
steps, cosine decay to a tenth by {config.steps} steps or {config.minutes:g} minutes of wall
time, whichever comes first; weight decay {config.weight_decay}), dropout {config.dropout};
melodic windows transposed by {TRANSPOSE[0]}..+{TRANSPOSE[1]} semitones; styles drawn in
proportion to their token counts to the power {config.style_power:g}, and each style's pieces
to the power {config.piece_power:g}. Retrain (builds the corpus first; run it again to resume an
interrupted run):

```
{retrain}
```
{_init_text(config)}
## Limits

A small model trained for an hour or two on a shared 2-core CPU: expect plausible texture,
rhythm and key in each style rather than long-range form. Pieces longer than the context slide
their window (re-primed at a bar line), so themes do not return across minutes. The drum styles
come from one data set of a few dozen performances each (hiphop: 30): their variety is limited.
"""
    path.write_text(text)


def rewrite_card(
    checkpoints: Path,
    cache_dir: Path,
    *,
    name: str = Path(CHECKPOINT_NAME).stem,
    fine_tuned: bool = False,
) -> Path:
    """Write run `name`'s model card again from its saved training state (that of its last
    fine-tuning run when `fine_tuned`)."""
    state_path = corpus_dir(cache_dir) / state_name(name, fine_tuned=fine_tuned)
    state = torch.load(state_path, map_location="cpu", weights_only=False)
    config = TrainConfig(**state["train_config"])
    model, meta = MusicTransformer.from_checkpoint(checkpoints / f"{name}.pt")
    path = checkpoints / f"{name}.md"
    write_model_card(path, config, model.config, meta["metrics"], meta["corpus"],
                     state["history"])  # fmt: skip
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: train or resume; prints the final metrics as JSON."""
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=None, help="corpus and state folder")
    parser.add_argument("--checkpoints", type=Path, default=DEFAULT_CHECKPOINTS)
    parser.add_argument("--fresh", action="store_true", help="ignore a saved state")
    parser.add_argument(
        "--card-only",
        action="store_true",
        help="only rewrite the model card (of the last fine-tuning run when --init is given)",
    )
    for name, value in asdict(defaults).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cache_dir = args.cache if args.cache is not None else default_cache_dir()
    if args.card_only:
        card = rewrite_card(args.checkpoints, cache_dir, name=args.name, fine_tuned=bool(args.init))
        print(card)
        return 0
    config = TrainConfig(**{k: getattr(args, k) for k in asdict(defaults)})
    try:
        metrics = train(
            config,
            data_dir=args.data,
            cache_dir=cache_dir,
            checkpoints=args.checkpoints,
            fresh=args.fresh,
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
