"""The CUDA path, checked where no GPU is: what `--device` resolves to, the refusal of
cuda without one, the GPU devices a GPU kernel's sandbox binds, the synchronised timing,
and the kernel pools a GPU assignment gets. On a machine with a GPU the bench measures the
path itself (`python -m grader.bench --device cuda`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import FAST, with_functions, write_notebook

from grader.cli import main
from grader.exercises import softmax_probes
from grader.sandbox import bwrap
from grader.sandbox.bwrap import SandboxSettings
from grader.scale.units import KernelPools

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")


def test_auto_is_the_device_this_machine_has(monkeypatch):
    auto = replace(FAST, device="auto")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert auto.resolved().device == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert auto.resolved().device == "cuda"
    assert replace(FAST, device="cpu").resolved().device == "cpu"  # asked for, kept


@no_gpu
def test_cuda_without_a_gpu_is_refused_before_anything_is_graded(tmp_path):
    write_notebook(with_functions({}), tmp_path / "submissions" / "alice.ipynb")
    refused = CliRunner().invoke(main, [str(tmp_path / "submissions"), "--out",
                                        str(tmp_path / "out"), "--device", "cuda"])
    assert refused.exit_code == 2
    assert "--device cuda was asked for, but torch sees no CUDA device" in refused.output
    assert not (tmp_path / "out").exists()


def test_a_gpu_kernels_sandbox_binds_the_gpu_devices_and_a_cpu_kernels_does_not(
        monkeypatch, tmp_path):
    devices = ["/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm"]
    monkeypatch.setattr(bwrap.glob, "glob",
                        lambda pattern: devices if pattern == "/dev/nvidia*" else [])
    gpu = bwrap.bwrap_command(tmp_path, tmp_path, SandboxSettings(), True, {})
    cpu = bwrap.bwrap_command(tmp_path, tmp_path, SandboxSettings(), False, {})
    bound = {tuple(gpu[i:i + 3]) for i in range(len(gpu)) if gpu[i] == "--dev-bind"}
    assert bound == {("--dev-bind", device, device) for device in devices}
    assert "--dev-bind" not in cpu


def test_the_timed_epoch_waits_for_the_gpu_before_its_clock_stops(monkeypatch):
    waited: list[str] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: waited.append("cuda"))
    softmax_probes.synchronize("cpu")
    assert waited == []
    softmax_probes.synchronize("cuda:0")
    assert waited == ["cuda"]


def test_a_gpu_assignment_gets_kernels_that_see_the_gpu(monkeypatch):
    made: list[tuple[SandboxSettings, bool]] = []

    class Recorded:
        def __init__(self, sandbox: SandboxSettings, gpu: bool):
            made.append((sandbox, gpu))

    monkeypatch.setattr("grader.scale.units.KernelPool", Recorded)
    pools = KernelPools((Path("/hidden"),))
    pools(replace(FAST, device="cuda"))
    pools(replace(FAST, device="cpu"))
    pools(replace(FAST, device="cuda"))  # the same sandbox and device: the same pool
    assert [gpu for _, gpu in made] == [True, False]
