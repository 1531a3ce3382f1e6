"""Convert the pretrained MTG-Jamendo taggers of ../shared/weights into studio checkpoints, once.

Each state_dict is renamed into `engine.models.taggers.Tagger`, saved as a self-describing
checkpoint (state_dict, config, labels, version, metrics) and checked against a forward pass of
the reference architecture beside the weights (its model.py, imported by this script only):
the largest absolute difference of the tag logits and of the penultimate layer on the same
input is printed and stored in the checkpoint's metrics.

    python -m engine.train.convert_taggers --figures bench/results/taggers_conversion.json
    python -m engine.train.convert_taggers --models jamendo-fcn --out-dir /tmp/taggers

Models (their licences, and the figures they gave the mood heads: docs/experiments/mood.md):
- jamendo-moodtheme: the MTG-Jamendo dataset's baseline CNN for its 56 mood/theme tags (code and
  weights Apache-2.0, Music Technology Group; tag data CC BY-NC-SA 4.0). Its input is the
  dataset's Essentia log-mel (12 kHz, frames of 512, hop 256, 96 Slaney bands, dB, the
  centred 1366 frames): rebuilt here with torch (symmetric Hann window, zero-padded centred
  frames, librosa's Slaney filterbank). The reference does not include it, so the check covers
  the network; the input was matched to the model's first batch norm instead: 10 log10 of the
  mel power gives mer4q clips mean -25.6 / variance 351 against its running -22.7 / 320 (the
  dataset script's 20 log10 gives -51 / 1404).
- jamendo-fcn, jamendo-musicnn: Won et al.'s FCN and musicnn trained on MTG-Jamendo top-50
  (MIT, Minz Won / Music Technology Group; tag data CC BY-NC-SA 4.0). Their mel front end is
  in the weights, so the check runs both models from the same audio.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchaudio
from torch import nn

from engine.models.taggers import CHECKPOINT_VERSION, Tagger, TaggerConfig
from engine.train.dataset import default_cache_dir

DEFAULT_WEIGHTS = Path("../shared/weights")
SOTA = "sota-music-tagging"
BASELINE = "mtg-jamendo-baseline"
CHECK_SECONDS = 30.0  # length of the synthetic clip the equivalence check reads


@dataclass(frozen=True)
class Source:
    """Where one model's weights are and how to read them."""

    weights: str  # path under the weights folder
    reference: str  # class name in the reference model.py
    config: TaggerConfig


MODELS = {
    "jamendo-moodtheme": Source(
        f"{BASELINE}/best_model.pth",
        "CNN",
        TaggerConfig(
            "cnn",
            12_000,
            pad_mode="constant",
            amin=1e-30,
            input_frames=1366,
            spread_inputs=True,
            n_tags=56,
            activation="elu",
        ),
    ),
    "jamendo-fcn": Source(
        f"{SOTA}/jamendo/fcn/best_model.pth",
        "FCN",
        TaggerConfig("cnn", 16_000, input_frames=1819, spread_inputs=True),
    ),
    "jamendo-musicnn": Source(
        f"{SOTA}/jamendo/musicnn/best_model.pth",
        "Musicnn",
        TaggerConfig("musicnn", 16_000, input_frames=187),
    ),
}


def read_labels(weights: Path, name: str) -> list[str]:
    """Tag names in output order."""
    if name == "jamendo-moodtheme":
        tags = np.load(weights / BASELINE / "tag_list.npy")[127:]
        return [str(t).removeprefix("mood/theme---") for t in tags]
    return (weights / SOTA / "jamendo" / "tags.txt").read_text().split()


def studio_state(name: str, reference: dict[str, torch.Tensor], model: Tagger) -> dict:
    """The reference state_dict renamed for `Tagger` (with its window and filterbank)."""
    state: dict[str, torch.Tensor] = {}
    if name == "jamendo-moodtheme":
        renames = {"bn_init.": "network.bn_input."}
        for i in range(5):
            renames |= {
                f"conv_{i + 1}.": f"network.convs.{i}.",
                f"bn_{i + 1}.": f"network.bns.{i}.",
            }
        renames["dense."] = "network.dense."
        config = model.config
        state["window"] = torch.hann_window(config.n_fft, periodic=False)
        state["mel_filters"] = torchaudio.functional.melscale_fbanks(
            config.n_fft // 2 + 1, 0.0, config.sample_rate / 2, config.n_mels,
            config.sample_rate, norm="slaney", mel_scale="slaney",
        ).T.contiguous()  # fmt: skip
    else:
        renames = {"spec_bn.": "network.bn_input."}
        if name == "jamendo-fcn":
            for i in range(5):
                renames |= {
                    f"layer{i + 1}.conv.": f"network.convs.{i}.",
                    f"layer{i + 1}.bn.": f"network.bns.{i}.",
                }
            renames["dense."] = "network.dense."
        else:
            renames |= {"layers.0.": "network.vertical.0.", "layers.1.": "network.vertical.1."}
            renames |= {f"layers.{i + 2}.": f"network.horizontal.{i}." for i in range(3)}
            renames |= {f"layer{i + 1}.": f"network.midend.{i}." for i in range(3)}
            renames |= {"dense1.": "network.dense.", "bn.": "network.bn_dense.",
                        "dense2.": "network.output."}  # fmt: skip
        state["window"] = reference["spec.spectrogram.window"]
        state["mel_filters"] = reference["spec.mel_scale.fb"].T.contiguous()
    for key, value in reference.items():
        if key.startswith("spec."):
            continue
        prefix = next(p for p in renames if key.startswith(p))
        state[renames[prefix] + key.removeprefix(prefix)] = value
    return state


def load_reference(weights: Path, name: str) -> nn.Module:
    """The reference architecture of `name` from the model.py beside its weights, in eval mode."""
    source = MODELS[name]
    folder = weights / source.weights.split("/")[0]
    if name != "jamendo-moodtheme":
        # model.py imports a Transformer module for a model we do not convert: stand it in.
        attention = types.ModuleType("attention_modules")
        for missing in ("BertConfig", "BertEncoder", "BertEmbeddings", "BertPooler",
                        "PositionalEncoding"):  # fmt: skip
            setattr(attention, missing, None)
        sys.modules.setdefault("attention_modules", attention)
        sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(f"reference_{name}", folder / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cls = getattr(module, source.reference)
    if name == "jamendo-moodtheme":
        model = cls(num_class=56)
    elif name == "jamendo-musicnn":
        model = cls(dataset="jamendo")
    else:
        model = cls()
    model.load_state_dict(torch.load(weights / source.weights, map_location="cpu"))
    return model.eval()


def check_audio(sample_rate: int) -> torch.Tensor:
    """A seeded synthetic clip: chords re-struck every 2 s over a little noise."""
    rng = np.random.default_rng(0)
    t = np.arange(int(CHECK_SECONDS * sample_rate)) / sample_rate
    audio = 0.01 * rng.normal(size=len(t))
    for f in (261.63, 329.63, 392.0, 130.81):
        for h in range(1, 6):
            audio += 0.08 / h * np.sin(2 * np.pi * f * h * t) * np.exp(-0.3 * (t % 2.0))
    return torch.from_numpy(audio.astype(np.float32))


def equivalence(name: str, model: Tagger, reference: nn.Module) -> dict[str, float]:
    """Largest absolute differences between the studio model and the reference on one input.

    Returns:
        {"logits": ..., "penultimate": ..., "probabilities": ...}: max |studio - reference|.
    """
    config = model.config
    audio = check_audio(config.sample_rate)[: (config.input_frames - 1) * config.hop_length]
    mel = model.log_mel(audio)[None]  # one input: centred frames, input_frames of them
    captured: dict[str, torch.Tensor] = {}
    last = reference.dense2 if name == "jamendo-musicnn" else reference.dense

    def hook(_: nn.Module, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        captured["penultimate"], captured["logits"] = inputs[0], output

    handle = last.register_forward_hook(hook)
    with torch.inference_mode():
        # The baseline CNN reads a log-mel; Won's models read audio through their own front end.
        probabilities = reference(mel if name == "jamendo-moodtheme" else audio[None])
        out = model.features(mel)
    handle.remove()
    return {
        "logits": float((out.logits - captured["logits"]).abs().max()),
        "penultimate": float((out.penultimate - captured["penultimate"]).abs().max()),
        "probabilities": float((torch.sigmoid(out.logits) - probabilities).abs().max()),
    }


def convert(weights: Path, name: str, out: Path) -> dict[str, float]:
    """Convert one model, check it against the reference, save it; return the differences."""
    source = MODELS[name]
    reference_state = torch.load(weights / source.weights, map_location="cpu")
    model = Tagger(source.config, tuple(read_labels(weights, name)))
    model.load_state_dict(studio_state(name, reference_state, model), strict=True)
    model.eval()
    differences = equivalence(name, model, load_reference(weights, name))
    checkpoint = {
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "config": source.config.to_dict(),
        "labels": list(model.labels),
        "version": CHECKPOINT_VERSION,
        "metrics": {"max_abs_difference_to_reference": differences, "source": source.weights},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, out)
    Tagger.from_checkpoint(out)  # round-trip check
    return differences


def main() -> None:
    """Convert the chosen models and print the equivalence figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--models", nargs="+", choices=tuple(MODELS), default=list(MODELS))
    parser.add_argument("--out-dir", type=Path, default=default_cache_dir() / "taggers")
    parser.add_argument("--figures", type=Path, help="also write the figures here (JSON)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    figures = {}
    for name in args.models:
        out = args.out_dir / f"{name}.pt"
        figures[name] = {**convert(args.weights, name, out), "checkpoint": str(out)}
        print(json.dumps({name: figures[name]}))
    print(json.dumps(figures, indent=2))
    if args.figures:
        args.figures.parent.mkdir(parents=True, exist_ok=True)
        args.figures.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
