"""Grading settings: every number that decides a score, in one place, recorded in results.

An assignment's settings live in a TOML file (defaults: the course's
assignments/default.toml), checked on load by pydantic, so a typo or an out-of-range value
is a clear error, never a silent default.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Annotated, Literal

import torch
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from grader.sandbox import SandboxSettings

Positive = Annotated[float, Field(gt=0)]
Count = Annotated[int, Field(ge=1)]


@dataclass(frozen=True)
class Settings:
    __pydantic_config__ = ConfigDict(extra="forbid")

    seed: Annotated[int, Field(ge=0, lt=2**31)] = 20_240_817
    cell_timeout: Positive = 120.0
    total_timeout: Positive = 600.0
    probe_timeout: Positive = 30.0
    epoch_timeout: Positive = 180.0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    max_epoch_ratio: Positive = 5.0
    linreg_examples: Annotated[int, Field(ge=100)] = 1000
    linreg_lr: Positive = 0.03
    linreg_batch_size: Count = 10
    linreg_epochs: Count = 3
    linreg_loss_margin: Annotated[float, Field(ge=1)] = 1.5
    linreg_weight_tolerance: Positive = 2e-3
    softmax_batch_size: Count = 256
    softmax_lr: Positive = 0.1
    softmax_accuracy_margin: Annotated[float, Field(ge=0, le=1)] = 0.02
    dice_groups: Annotated[int, Field(ge=100)] = 5000
    dice_tolerance: Annotated[float, Field(gt=0, lt=1)] = 0.01
    gradient_eps: Positive = 1e-2
    gradient_atol: Positive = 0.05
    autograd_epochs: Count = 3000
    autograd_lr: Positive = 1e-2
    autograd_tolerance: Positive = 0.01
    init_std_tolerance: Annotated[float, Field(gt=0, lt=1)] = 0.1
    points: dict[str, Annotated[float, Field(ge=0)]] = field(default_factory=dict)
    hidden: tuple[str, ...] = ()
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)

    def resolved(self) -> Settings:
        """Settings with 'auto' replaced by the device this machine really has."""
        if self.device == "auto":
            return replace(self, device="cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda was asked for, but torch sees no CUDA device")
        return self

    def as_dict(self) -> dict:
        return asdict(self)

    def digest(self) -> str:
        text = json.dumps(self.as_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class ConfigError(ValueError):
    """An assignment file that cannot be used, with every problem listed."""


def load_settings(path: Path, known_tests: set[str]) -> Settings:
    """Settings from a TOML file, validated; test names in points/hidden must exist."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None
    try:
        settings = TypeAdapter(Settings).validate_python(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"{path}: {problems}") from None
    unknown = sorted((set(settings.points) | set(settings.hidden)) - known_tests)
    if unknown:
        raise ConfigError(f"{path}: unknown test name(s) {', '.join(unknown)}; "
                          f"known tests: {', '.join(sorted(known_tests))}")
    return settings
