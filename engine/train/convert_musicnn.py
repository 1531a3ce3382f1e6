"""Convert musicnn's pretrained TensorFlow 1 checkpoint to a PyTorch checkpoint, once.

The weights ship inside the ``musicnn==0.1.0`` wheel (Jordi Pons, ISC licence). Get it
without installing it (it pins an old TensorFlow and numpy)::

    pip download --no-deps musicnn==0.1.0 -d /tmp/musicnn
    cd /tmp/musicnn && unzip musicnn-0.1.0-py3-none-any.whl

TensorFlow is needed only to read the checkpoint, and only by this one-off script: keep it
out of the project's environment. Make a throwaway one, then convert in two steps::

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu numpy

    # 1. TF venv: dump the checkpoint's variables to numpy arrays (imports no torch)
    /tmp/tfvenv/bin/python engine/train/convert_musicnn.py \\
        --wheel-dir /tmp/musicnn --dump-npz /tmp/musicnn_msd.npz
    # 2. project venv: build the PyTorch model from them and save it
    .venv/bin/python -m engine.train.convert_musicnn \\
        --wheel-dir /tmp/musicnn --npz /tmp/musicnn_msd.npz --out checkpoints/musicnn_msd.pt

or in one command, letting step 2 run step 1 in the TF venv::

    .venv/bin/python -m engine.train.convert_musicnn --wheel-dir /tmp/musicnn \\
        --tf-python /tmp/tfvenv/bin/python --out checkpoints/musicnn_msd.pt

``--wheel-dir`` may also be the .whl file itself. ``--model MTT_musicnn`` converts the
MagnaTagATune model, which has the same architecture (``--out`` defaults to
checkpoints/musicnn_mtt.pt then; see checkpoints/musicnn_mtt.md)::

    .venv/bin/python -m engine.train.convert_musicnn --wheel-dir /tmp/musicnn \\
        --model MTT_musicnn --tf-python /tmp/tfvenv/bin/python
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from contextlib import ExitStack
from pathlib import Path

import numpy as np

MODELS = ("MSD_musicnn", "MTT_musicnn")  # musicnn-architecture models in the wheel
_LABELS_VARIABLE = {"MSD_musicnn": "MSD_LABELS", "MTT_musicnn": "MTT_LABELS"}
DEFAULT_OUT = {  # where each model's checkpoint is committed
    "MSD_musicnn": Path("checkpoints/musicnn_msd.pt"),
    "MTT_musicnn": Path("checkpoints/musicnn_mtt.pt"),
}
_SKIPPED = ("Adam", "beta1_power", "beta2_power")  # optimizer state: not converted

# (TF variable scope, torch module prefix, kind) in the order musicnn.models creates them.
_LAYERS: tuple[tuple[str, str, str], ...] = (
    ("batch_normalization", "bn_input", "bn"),
    ("conv2d", "timbral.0.conv", "conv2d"),
    ("batch_normalization_1", "timbral.0.bn", "bn"),
    ("conv2d_1", "timbral.1.conv", "conv2d"),
    ("batch_normalization_2", "timbral.1.bn", "bn"),
    ("conv2d_2", "temporal.0.conv", "conv2d"),
    ("batch_normalization_3", "temporal.0.bn", "bn"),
    ("conv2d_3", "temporal.1.conv", "conv2d"),
    ("batch_normalization_4", "temporal.1.bn", "bn"),
    ("conv2d_4", "temporal.2.conv", "conv2d"),
    ("batch_normalization_5", "temporal.2.bn", "bn"),
    ("conv2d_5", "midend.0.conv", "conv1d"),
    ("batch_normalization_6", "midend.0.bn", "bn"),
    ("conv2d_6", "midend.1.conv", "conv1d"),
    ("batch_normalization_7", "midend.1.bn", "bn"),
    ("conv2d_7", "midend.2.conv", "conv1d"),
    ("batch_normalization_8", "midend.2.bn", "bn"),
    ("batch_normalization_9", "bn_pool", "bn"),
    ("dense", "dense", "dense"),
    ("batch_normalization_10", "bn_dense", "bn"),
    ("dense_1", "output", "dense"),
)
_BN_NAMES = {
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}


def _package_dir(wheel: Path, stack: ExitStack) -> Path:
    """The ``musicnn`` package folder of an unzipped wheel, or of a .whl unzipped to a temp dir."""
    if wheel.is_file() and wheel.suffix == ".whl":
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(tmp)
        wheel = tmp
    for candidate in (wheel / "musicnn", wheel):
        if (candidate / "configuration.py").is_file() and (candidate / "models.py").is_file():
            return candidate
    raise SystemExit(f"{wheel}: no musicnn package found (expected musicnn/configuration.py)")


def read_labels(package: Path, model: str) -> list[str]:
    """Tag names of `model`, parsed (not imported) from the wheel's configuration.py."""
    tree = ast.parse((package / "configuration.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == _LABELS_VARIABLE[model] for t in node.targets
        ):
            return list(ast.literal_eval(node.value))
    raise SystemExit(f"{_LABELS_VARIABLE[model]} not found in {package / 'configuration.py'}")


def dump_npz(package: Path, model: str, out: Path) -> None:
    """Step 1 (TF venv): write the checkpoint's model variables to an .npz, keyed by TF name."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    # The wheel's checkpoint prefix is the model folder itself (files ".index", ".data-*").
    reader = tf.compat.v1.train.NewCheckpointReader(str(package / model) + "/")
    names = sorted(reader.get_variable_to_shape_map())
    arrays = {n: reader.get_tensor(n) for n in names if not any(s in n for s in _SKIPPED)}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    print(
        f"wrote {len(arrays)} arrays ({len(names) - len(arrays)} optimizer slots skipped) to {out}"
    )


def _check_training_config(package: Path, model: str, config_dict: dict) -> None:
    """Fail loudly if the wheel's config.json disagrees with MusicnnConfig's preprocessing."""
    path = package / model / "config.json"
    if not path.is_file():
        return
    trained = json.loads(path.read_text())
    rep = trained["audio_rep"]
    expected = {
        "sample_rate": rep["resample_sr"],
        "n_fft": rep["n_fft"],
        "hop_length": rep["hop"],
        "n_mels": rep["n_mels"],
        "patch_frames": trained["n_frames"],
        "n_tags": trained["num_classes_dataset"],
    }
    wrong = {k: (v, config_dict[k]) for k, v in expected.items() if config_dict[k] != v}
    if wrong or trained.get("pre_processing") != "logC" or rep["spectrogram_type"] != "mel":
        raise SystemExit(f"{path} does not match MusicnnConfig: {wrong or trained}")


def build_state_dict(arrays: dict[str, np.ndarray]) -> dict:
    """Map TF variables to the engine.models.musicnn.Musicnn state dict (torch tensors)."""
    import torch

    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()

    def take(name: str) -> np.ndarray:
        used.add(name)
        return arrays[name]

    for scope, prefix, kind in _LAYERS:
        if kind == "bn":
            for tf_name, torch_name in _BN_NAMES.items():
                state[f"{prefix}.{torch_name}"] = torch.from_numpy(take(f"{scope}/{tf_name}"))
            state[f"{prefix}.num_batches_tracked"] = torch.tensor(0)
            continue
        kernel, bias = take(f"{scope}/kernel"), take(f"{scope}/bias")
        if kind == "conv2d":  # TF (h, w, in, out) -> torch (out, in, h, w)
            weight = kernel.transpose(3, 2, 0, 1)
        elif kind == "conv1d":  # TF (length, in, 1, out) -> torch (out, in, length)
            weight = kernel[:, :, 0, :].transpose(2, 1, 0)
        else:  # dense: TF (in, out) -> torch (out, in)
            weight = kernel.T
        state[f"{prefix}.weight"] = torch.from_numpy(np.ascontiguousarray(weight))
        state[f"{prefix}.bias"] = torch.from_numpy(bias)
    leftover = set(arrays) - used
    if leftover:
        raise SystemExit(f"unconverted TF variables: {sorted(leftover)}")
    return state


def convert(package: Path, model: str, npz: Path, out: Path) -> None:
    """Step 2 (project venv): build the Musicnn checkpoint dict from the dumped arrays."""
    import torch

    from engine.models.musicnn import CHECKPOINT_VERSION, Musicnn, MusicnnConfig

    config = MusicnnConfig()
    _check_training_config(package, model, config.to_dict())
    labels = read_labels(package, model)
    with np.load(npz) as data:
        arrays = {k: data[k].astype(np.float32) for k in data.files}
    net = Musicnn(config, tuple(labels))
    net.load_state_dict(build_state_dict(arrays), strict=True)  # checks every name and shape
    checkpoint = {
        "state_dict": {k: v.detach().clone() for k, v in net.state_dict().items()},
        "config": config.to_dict(),
        "labels": labels,
        "version": CHECKPOINT_VERSION,
        "metrics": {},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, out)
    Musicnn.from_checkpoint(out)  # round-trip check
    params = sum(v.numel() for v in net.parameters())
    print(f"wrote {out} ({out.stat().st_size / 2**20:.2f} MiB, {params:,} parameters, {model})")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel-dir", type=Path, required=True, help="unzipped wheel or .whl")
    parser.add_argument("--model", choices=MODELS, default="MSD_musicnn")
    parser.add_argument("--dump-npz", type=Path, help="step 1 only (needs TensorFlow)")
    parser.add_argument("--npz", type=Path, help="arrays written by --dump-npz")
    parser.add_argument("--tf-python", help="a Python with TensorFlow to run step 1 in")
    parser.add_argument("--out", type=Path, help="default: the model's file in checkpoints/")
    args = parser.parse_args(argv)
    out = args.out or DEFAULT_OUT[args.model]

    with ExitStack() as stack:
        package = _package_dir(args.wheel_dir, stack)
        if args.dump_npz:
            dump_npz(package, args.model, args.dump_npz)
            return
        npz = args.npz
        if npz is None:
            npz = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "weights.npz"
            if args.tf_python:
                cmd = [args.tf_python, str(Path(__file__).resolve()), "--dump-npz", str(npz)]
                cmd += ["--wheel-dir", str(package), "--model", args.model]
                subprocess.run(cmd, check=True)
            else:
                try:
                    dump_npz(package, args.model, npz)
                except ImportError:
                    raise SystemExit(
                        "TensorFlow is not importable here: pass --tf-python PATH or --npz FILE "
                        "(see this script's docstring)"
                    ) from None
        convert(package, args.model, npz, out)


if __name__ == "__main__":
    sys.exit(main())
