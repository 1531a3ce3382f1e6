"""A training run that lasts a budget of minutes or steps and survives being killed.

Shared by the training scripts that run for a long time on the CPU: the learning rate warms
up, then follows a cosine over the budget; every SAVE_EVERY_S seconds (and at the end) the run
measures itself, appends the figures to <out>.log.jsonl and saves the model beside the full
training state (<out>.state); the same command started again resumes from that state.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

SAVE_EVERY_S = 300


def add_budget_arguments(parser: argparse.ArgumentParser, *, minutes: float) -> None:
    """--minutes, --steps, --threads and --seed."""
    parser.add_argument("--minutes", type=float, default=minutes, help="training time budget")
    parser.add_argument("--steps", type=int, default=0,
                        help="a budget in optimiser steps instead of minutes (0: by minutes); "
                        "compares variants at equal work whatever else the machine is doing")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)


class Run:
    """The budget, schedule and saved state of one training run."""

    def __init__(self, out: Path, model: nn.Module, optimizer: torch.optim.Optimizer, *,
                 args: argparse.Namespace, lr: float, warmup: int, label: str) -> None:
        self.out, self.model, self.optimizer = out, model, optimizer
        self.minutes, self.steps, self.lr, self.warmup = args.minutes, args.steps, lr, warmup
        self.label = label  # written with every log line (the variant)
        self.state_path = out.with_suffix(".state")
        self.log_path = out.with_suffix(".log.jsonl")
        self.state: dict = {"elapsed": 0.0, "step": 0, "epoch": 0, "history": []}
        if self.state_path.exists():
            saved = torch.load(self.state_path, weights_only=False)
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            self.state = saved["state"]
            print(f"resumed at step {self.step} ({self.state['elapsed'] / 60:.1f} min)",
                  flush=True)
        self.started = time.time() - self.state["elapsed"]
        self.last_save = time.time()
        self.losses: list[float] = []

    @property
    def step(self) -> int:
        """Optimiser steps taken so far."""
        return int(self.state["step"])

    def progress(self) -> float:
        """How far through its budget the run is, from 0 (1 or more: done)."""
        if self.steps:
            return self.step / self.steps
        return (time.time() - self.started) / (self.minutes * 60)

    def done(self) -> bool:
        """Whether the budget is spent."""
        return self.progress() >= 1

    def update(self, loss: torch.Tensor) -> None:
        """One optimiser step on `loss` at the scheduled learning rate (gradients clipped)."""
        warm = min(1.0, (self.step + 1) / self.warmup)
        cosine = 0.5 * (1 + math.cos(math.pi * min(self.progress(), 1.0)))
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * warm * cosine
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
        self.optimizer.step()
        self.losses.append(loss.item())
        self.state["step"] += 1

    def save_if_due(self, measure: Callable[[], dict], write: Callable[[dict], None]) -> None:
        """`save` when SAVE_EVERY_S seconds have passed since the last save."""
        if time.time() - self.last_save > SAVE_EVERY_S:
            self.save(measure, write)

    def save(self, measure: Callable[[], dict], write: Callable[[dict], None]) -> None:
        """Measure the model (`measure` gives figures), log them, `write` the model with
        them, and save the training state."""
        self.state["elapsed"] = time.time() - self.started
        entry = {"step": self.step, "minutes": round(self.state["elapsed"] / 60, 1),
                 "loss": round(float(np.mean(self.losses or [float("nan")])), 4), **measure()}
        self.model.train()
        self.state["history"].append(entry)
        print(json.dumps(entry), flush=True)
        with self.log_path.open("a") as handle:
            handle.write(json.dumps({"variant": self.label, **entry}) + "\n")
        write({"variant": self.label, **entry})
        torch.save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "state": self.state}, self.state_path)
        self.losses.clear()
        self.last_save = time.time()
