"""Each kernel lives in control groups of its own, and a kernel that stops is not the end.

The groups hold the sandbox's caps for the kernel's whole process tree, and closing the
kernel kills every process in them, even one that left the kernel's process group. The
restart planning (which probes a stopped kernel takes down with it) is checked on its own.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import EXERCISES, wait_for

from grader.authoring.exercise import Step
from grader.grading.plan import StepWork, left_to_run, planned_work, stopped_by
from grader.sandbox import cgroups
from grader.sandbox.bwrap import SandboxSettings
from grader.sandbox.kernels import (
    BACKGROUND_SHARES,
    FOREGROUND_SHARES,
    KernelPool,
    LaunchedKernel,
)

needs_cgroups = pytest.mark.skipif(not cgroups.available(),
                                   reason="no cgroup v1 hierarchies this process may manage")


def groups_of(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    return {controller: line.split(":", 2)[2] for line in lines
            for controller in line.split(":", 2)[1].split(",")}


@needs_cgroups
def test_a_kernel_runs_in_its_own_groups_with_the_caps(tmp_path):
    kernel = LaunchedKernel(SandboxSettings(memory_mb=3000, max_processes=77), gpu=False)
    try:
        assert wait_for(lambda: len(kernel.group.processes()) >= 1)
        pid = kernel.group.processes()[-1]
        assert all(groups_of(pid)[c].endswith(path.name)
                   for c, path in zip(cgroups.CONTROLLERS, kernel.group.paths, strict=True))
        _, memory, pids = kernel.group.paths
        assert int((memory / "memory.limit_in_bytes").read_text()) == 3000 * 2**20
        assert (pids / "pids.max").read_text().strip() == "77"
    finally:
        kernel.close()
    assert not any(path.exists() for path in kernel.group.paths)
    assert not any(Path(f"/proc/{pid}").exists() for pid in kernel.group.processes())


@needs_cgroups
def test_a_kernel_booting_ahead_yields_the_cores_until_it_is_taken():
    pool = KernelPool(SandboxSettings(), gpu=False)
    try:
        first = pool.take()
        ahead = pool.next
        shares = [int((k.group.paths[0] / "cpu.shares").read_text()) for k in (first, ahead)]
        assert shares == [FOREGROUND_SHARES, BACKGROUND_SHARES]
        first.close()
        assert pool.take() is ahead
        assert int((ahead.group.paths[0] / "cpu.shares").read_text()) == FOREGROUND_SHARES
        ahead.close()
    finally:
        pool.close()


@needs_cgroups
def test_closing_kills_a_process_that_left_the_process_group():
    group = cgroups.KernelGroup(f"grader-test-{os.getpid()}", 512, 32)
    script = "import os, time\nos.setsid()\ntime.sleep(600)\n"
    command = [*group.enter_command(), "python3", "-c", script]
    child = os.spawnvp(os.P_NOWAIT, command[0], command)
    try:
        assert wait_for(lambda: child in group.processes())
    finally:
        group.close()
    assert os.waitpid(child, 0)[0] == child  # reaped: it was killed
    assert not any(path.exists() for path in group.paths)


# --- which probes a stopped kernel takes down --------------------------------------------

WORK = [StepWork("ex", "m", "PROBES", Step({}), ["softmax.values", "softmax.large",
                                                  "cross_entropy.values"]),
        StepWork("ex", "m", "EPOCH", Step({}), ["epoch.run", "epoch.collect"]),
        StepWork("other", "n", "PROBES", Step({}), ["normal.grid"])]
USES = {"epoch.run": ("softmax", "cross_entropy"), "epoch.collect": ("softmax",)}


def test_a_probe_that_stops_the_kernel_takes_its_function_and_its_callers_along():
    failed = stopped_by("softmax.values", WORK, "the kernel died", USES)
    assert set(failed) == {"softmax.values", "softmax.large", "epoch.run", "epoch.collect"}
    assert "stopped while running this probe: the kernel died" in failed["softmax.values"][
        "message"]
    assert failed["epoch.run"]["message"] == "not run: the probe softmax.values stopped the kernel"
    assert not any(entry["ok"] for entry in failed.values())
    left = left_to_run(WORK, failed)
    assert [item.keys for item in left] == [["cross_entropy.values"], ["normal.grid"]]


def test_the_plan_lists_every_probe_in_the_kernels_order():
    work = planned_work(EXERCISES)
    keys = [key for item in work for key in item.keys]
    assert len(keys) == len(set(keys))
    assert keys.index("epoch.prepare") < keys.index("epoch.run")
    assert left_to_run(work, dict.fromkeys(keys)) == []
