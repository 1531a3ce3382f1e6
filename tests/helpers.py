"""Helpers shared by test modules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_engine(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m engine ARGS` from the project root, with CI=1 as on the CI machine.

    CI=1 matters: pyfluidsynth prints to stdout on import when it is set, and that line must
    not reach the CLI's JSON.
    """
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "CI": "1", **(env or {})},
        timeout=300,
    )
