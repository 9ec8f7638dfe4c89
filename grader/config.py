"""Grading settings: every number that decides a score, in one place, recorded in results."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

import torch

from grader.sandbox import SandboxSettings


@dataclass(frozen=True)
class Settings:
    seed: int = 20_240_817
    cell_timeout: float = 120.0
    total_timeout: float = 600.0
    probe_timeout: float = 30.0
    epoch_timeout: float = 180.0
    device: str = "auto"
    max_epoch_ratio: float = 5.0
    linreg_examples: int = 1000
    linreg_lr: float = 0.03
    linreg_batch_size: int = 10
    linreg_epochs: int = 3
    linreg_loss_margin: float = 1.5
    linreg_weight_tolerance: float = 2e-3
    softmax_batch_size: int = 256
    softmax_lr: float = 0.1
    softmax_accuracy_margin: float = 0.02
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
