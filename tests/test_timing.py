"""Timing that load cannot sway: a speed verdict reads the kernel's CPU time from its
cgroup beside the reference's, a measurement too noisy to judge costs no points, and the
solution graded beside busy processes keeps its speed mark."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import nbformat
import pytest
from conftest import FAST, SOLUTION, grade_file, write_notebook

from grader import cgroups
from grader.checks import Failed, NotMeasured, expect_fast_enough
from grader.results import NOT_MEASURED, Timing

HOGS = 3  # busy processes beside the grading: a load of about 5 on two cores, with it


def timing(wall: float, cpu: float | None, reference_busy: float = 1.0,
           runnable: float = 1.0) -> Timing:
    """A student step `wall` times the reference's by the clock and `cpu` times by CPU time,
    the reference's clock running `reference_busy` times its CPU time, the kernel's threads
    running or waiting to run for `runnable` of its wall clock (the rest asleep)."""
    reference = 0.3 * reference_busy
    return Timing("epoch.run", "cpu", reference * wall, reference, 5.0,
                  None if cpu is None else 0.3 * cpu, 0.3, runnable * reference * wall)


def verdict(step: Timing) -> str:
    return expect_fast_enough(step, "one epoch", "avoid Python loops over examples")


def test_fast_by_the_wall_clock_passes():
    assert "1.20× the reference" in verdict(timing(1.2, None))


def test_slow_by_the_clock_but_not_by_cpu_time_passes_saying_the_machine_was_busy():
    message = verdict(timing(9.0, 1.1, reference_busy=1.0))
    assert "1.10× the reference's" in message and "the machine was busy" in message


def test_a_kernel_that_sleeps_is_timed_by_the_clock():
    """Sleeping uses no CPU: a step slow because it sleeps is not excused as a busy machine."""
    with pytest.raises(Failed, match=r"9\.0× the reference's .*Python loops"):
        verdict(timing(9.0, 1.1, runnable=0.2))


def test_slow_by_cpu_time_fails_on_cpu_time():
    with pytest.raises(Failed, match=r"of CPU time .* 7\.0× the reference's .*Python loops"):
        verdict(timing(8.0, 7.0))


def test_without_the_kernels_cpu_time_a_busy_machine_is_not_measured():
    with pytest.raises(NotMeasured, match="not measured: the machine was busy"):
        verdict(timing(8.0, None, reference_busy=3.0))


def test_without_the_kernels_cpu_time_an_idle_machine_still_judges():
    with pytest.raises(Failed, match=r"8\.0× the reference's"):
        verdict(timing(8.0, None, reference_busy=1.0))


def test_a_step_that_did_not_run_fails():
    with pytest.raises(Failed, match="did not run"):
        verdict(Timing("epoch.run", "cpu", None, 0.3, 5.0))


def test_old_timings_load_without_cpu_times():
    assert Timing("epoch.run", "cpu", 1.0, 0.5, 5.0).cpu_ratio is None


def test_a_kernel_cpu_time_too_small_for_its_work_is_not_read():
    """A kernel outside its accounting group shows next to no CPU time: that is no proof of
    speed."""
    assert Timing("epoch.run", "cpu", 3.0, 0.3, 5.0, 0.001, 0.3).cpu_ratio is None


needs_cgroups = pytest.mark.skipif(not cgroups.available(), reason="no cgroups to manage here")


@needs_cgroups
def test_the_kernel_groups_cpu_time_counts_what_runs_in_it():
    group = cgroups.for_kernel("grader-test-cpu-time", 512, 64)
    assert group is not None
    try:
        if not cgroups.accounts_cpu():
            pytest.skip("no cpuacct hierarchy here")
        before = group.cpu_seconds()
        spin = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
        subprocess.run([*group.enter_command(), sys.executable, "-c", spin], check=True)
        assert group.cpu_seconds() - before >= 0.25
    finally:
        group.close()


@pytest.fixture
def busy_machine() -> Iterator[None]:
    """HOGS processes spinning beside the test, ended by their ids afterwards."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(HOGS)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


@needs_cgroups
def test_the_solution_keeps_its_speed_mark_beside_busy_processes(busy_machine, tmp_path):
    path = write_notebook(nbformat.read(SOLUTION, as_version=4), tmp_path / "solution.ipynb")
    result = grade_file(path, FAST)  # the assignment's own bound: 5x the reference's epoch
    [speed] = [test for test in result.tests
               if test.name == "softmax_training.epoch_is_fast_enough"]
    [epoch] = result.timings
    assert speed.passed and speed.points == speed.max_points, (speed.message, epoch)
    if not cgroups.accounts_cpu():
        assert speed.state == NOT_MEASURED or epoch.ratio <= epoch.max_ratio
    else:  # the kernel's own work was counted, beside the reference's
        assert epoch.cpu_ratio is not None and 0.2 < epoch.cpu_ratio < 5, epoch
