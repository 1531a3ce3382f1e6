"""Network definitions only: nn.Module + config dataclass + from_checkpoint."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from engine.errors import ModelUnavailable

Model = TypeVar("Model", bound=nn.Module)

# What torch.load and a model's rebuild raise for a file that is not the checkpoint it should be.
UNREADABLE_CHECKPOINT = (
    KeyError,
    TypeError,
    RuntimeError,
    ValueError,
    AttributeError,
    OSError,
    EOFError,
    pickle.UnpicklingError,
)


def load_checkpoint(
    path: str | Path,
    build: Callable[[dict[str, Any]], Model],
    *,
    device: str | torch.device,
    name: str,
    missing: str,
) -> tuple[Model, dict[str, Any]]:
    """Load a checkpoint and `build` its model from the stored entries.

    Returns:
        (the model on `device` in eval mode, the stored entries as `build` left them).

    Raises:
        ModelUnavailable: "{name} {path} {missing}" when the file is missing; "{name} {path}
            could not be read (...)." when it, or the model built from it, is broken.
    """
    if not Path(path).is_file():
        raise ModelUnavailable(f"{name} {path} {missing}")
    try:
        stored = torch.load(path, map_location=device, weights_only=True)
        model = build(stored)
    except UNREADABLE_CHECKPOINT as err:
        raise ModelUnavailable(f"{name} {path} could not be read ({err}).") from None
    return model.to(device).eval(), stored


def stored_config(config_class: type, stored: dict[str, Any]) -> Any:
    """A config dataclass rebuilt from a checkpoint's "config" entry (lists back to tuples)."""
    entries = {key: tuple(value) if isinstance(value, list) else value
               for key, value in stored["config"].items()}
    return config_class(**entries)
