"""The benchmark's latency figures (grader/bench.py): one submission graded in a fresh
process, as a TA regrading one student waits for it, cold (an empty temporary folder: the
data inflated and the reference observed anew) and warm (caches on disk), with where its
seconds went; and Gradescope's run_autograder in the zip's real layout, in a fresh
container's temporary folder and again. Each against plain execution of the same notebook,
measured in the same run by the caller."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from grader.authoring import course
from grader.authoring.autograder import (
    build_autograder,
    container_environment,
    install_offline,
    lay_out,
)
from grader.authoring.config import Settings

RUNS = 2  # warm runs; the best counts
GRADE = (sys.executable, "-c", "from grader.cli import entry; entry()")


def fresh_tmp(folder: Path) -> dict[str, str]:
    """The environment of a process whose temporary folder is empty, as a new container's."""
    folder.mkdir(parents=True)
    return {**os.environ, "TMPDIR": str(folder)}


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    """Seconds `command` took, and what it printed on stdout."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return time.perf_counter() - started, done.stdout


def grade_once(folder: Path, out: Path, notebook: str,
               env: dict[str, str] | None = None) -> tuple[float, list[dict]]:
    """`grade FOLDER --profile --json` in a fresh process: its seconds and its phases."""
    seconds, printed = timed([*GRADE, str(folder), "--out", str(out), "--assignment", notebook,
                              "--force", "--profile", "--json"], env)
    return seconds, json.loads(printed[printed.index("{"):])["profile"]


def bench_one(folder: Path, notebook: str, workdir: Path,
              plain: Callable[[], float]) -> dict:
    """One submission: cold once, then warm RUNS times, each after a `plain` execution of
    the same notebook, so that both meet the machine as it is that minute (its speed
    drifts by a tenth within the hour); the best of each, and the best warm run's phases."""
    cold, _ = grade_once(folder, workdir / "cold", notebook, fresh_tmp(workdir / "cold-tmp"))
    plains, warms = [], []
    for run in range(RUNS):
        plains.append(plain())
        warms.append(grade_once(folder, workdir / f"warm-{run}", notebook))
    warm = min(warms, key=lambda found: found[0])
    return {"plain": min(plains), "cold": cold, "warm": warm[0], "phases": warm[1]}


def bench_gradescope(settings: Settings, source: Path, workdir: Path) -> dict:
    """run_autograder as Gradescope runs it (the zip `grade gradescope` builds, unpacked and
    installed as setup.sh would, offline) on `source`: in a fresh container's temporary
    folder, then warm, best of RUNS."""
    root = workdir / "autograder"
    root.mkdir(parents=True)
    built = build_autograder(course.current(), [settings], root / "autograder.zip")
    lay_out(built, root)
    python = install_offline(root)
    (root / "submission").mkdir()
    (root / "submission" / source.name).write_bytes(source.read_bytes())
    env = container_environment(root, python)
    run = [str(root / "run_autograder")]
    cold, _ = timed(run, env)
    warm = min(timed(run, env)[0] for _ in range(RUNS))
    return {"cold": cold, "warm": warm}
