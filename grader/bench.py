"""Benchmark of the grader (not a test): grading against plain execution of the same
notebooks, what `--jobs 2` buys, the CPU seconds a submission costs and the time 500 would
take, the sliced Fashion-MNIST epoch against a torchvision DataLoader, the peak memory of a
grading worker, how soon the CLI answers, and how fast `grade audit` grades mutants (the
whole of linear_regression's, against its 5-minute target).

    python -m grader.bench --copies 20 --out bench-results.json

Prints a table and writes every figure, the settings used and the machine to a JSON file.
Each grading batch is `grade` run in a fresh process, as a user runs it, so its peak
memory is the grading's alone.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms

from grader.authoring import course
from grader.authoring.config import Settings, load_settings
from grader.bench_latency import GRADE, bench_gradescope, bench_one
from grader.bench_latency import RUNS as SINGLE_RUNS
from grader.exercises.softmax_probes import WARMUP_BATCHES, synchronize, training_step
from grader.grading.reference import reference_functions
from grader.kernel.data import as_float, data_files, find_data_dir, load_fashion_mnist
from grader.sandbox.datacache import inflate
from grader.sandbox.execute import SELF_CHECK_TAG
from grader.sandbox.kernels import descendants

NOTEBOOK = "softmax_regression"  # the assignment with the timed epoch
BATCH_SIZE = 256
LR = 0.1
SEED = 0
TARGET_RATIO = 0.5  # grading at most half the cost of plain execution
PROJECTED = 500  # submissions, for the projected time of a large class
CLI_RUNS = 5
SINGLE_TARGET = 1.0  # one submission graded at most as slowly as plain execution
PARALLEL_TARGET = 1.8  # --jobs 2 over --jobs 1, and Dask's two local workers over one
PROJECTED_TARGET = 8.0  # minutes for PROJECTED submissions
MEMORY_TARGET = 1.1 * 1024  # MiB, a grading worker's peak
PEAK_INTERVAL = 0.5
AUDITED = "linear_regression"  # the assignment whose every mutant the audit figure grades
AUDIT_TARGET = 300.0  # seconds for all of them, on a 2-core machine
Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]
Row = tuple[str, str, str]


# --- the machine -------------------------------------------------------------------------

def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name, as /proc/cpuinfo gives it."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_info() -> dict:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_average_start": os.getloadavg(),
    }


def bench_settings(device: str) -> Settings:
    """The course's settings of NOTEBOOK's assignment, on `device`."""
    settings = load_settings(course.current().assignments / f"{NOTEBOOK}.toml")
    return replace(settings, device=device)


def resolve_device(device: str) -> str:
    """'auto' as the device this machine has; ValueError for cuda without CUDA."""
    return bench_settings(device).resolved().device


# --- (1, 2, 4) a batch of submissions ----------------------------------------------------

def make_copies(source: Path, folder: Path, copies: int) -> list[Path]:
    """`copies` copies of `source` as folder/alice-00.ipynb, alice-01.ipynb, …"""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"alice-{i:02d}.ipynb" for i in range(copies)]
    for path in paths:
        shutil.copyfile(source, path)
    return paths


def warm_up_notebook(workdir: Path) -> Path:
    """One cell that reads from disk what every notebook will (torch, the data), so the
    timed runs start from the same warm cache without running a whole notebook."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(
        "import torch, torchvision\nfrom grader.kernel.data import load_fashion_mnist\n"
        "load_fashion_mnist()")]
    path = workdir / "warm-up.ipynb"
    nbformat.write(notebook, path)
    return path


def execute_plain(paths: list[Path]) -> float:
    """Seconds to execute the notebooks one after another with nbclient, nothing else: the
    same cells the grader runs (self-check cells are the student's, not the grader's), and
    the kernel killed at the end as the grader kills its own (a graceful shutdown waits
    about two seconds a notebook for torch's interpreter to exit)."""
    started = time.perf_counter()
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       skip_cells_with_tag=SELF_CHECK_TAG, shutdown_kernel="immediate",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    return time.perf_counter() - started


def status_kib(pid: int | str, field: str) -> int:
    """A field of /proc/PID/status in KiB (VmHWM: the peak RSS since the last exec), or 0."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def record_peaks(peaks: dict[str, float], root: int) -> None:
    """Raise peaks['kernels'] and peaks['children'] (MiB) to the VmHWM of root's descendants:
    the kernels (running ipykernel, or forked from the warm parent under a uid of their
    own), and root's other children (the pool workers at --jobs 2)."""
    for pid, parent in descendants(root).items():
        try:
            kernel = (b"ipykernel" in Path(f"/proc/{pid}/cmdline").read_bytes()
                      or Path(f"/proc/{pid}").stat().st_uid != os.getuid())
        except OSError:
            continue
        key = "kernels" if kernel else "children" if parent == root else None
        if key:
            peaks[key] = max(peaks.get(key, 0.0), status_kib(pid, "VmHWM") / 1024)


def watch_peaks(peaks: dict[str, float], stop: threading.Event, interval: float,
                root: int) -> None:
    """Every `interval` seconds until `stop` is set (run in a thread): record_peaks below
    `root`, and root's own peak in peaks['self']."""
    while not stop.wait(interval):
        peaks["self"] = max(peaks.get("self", 0.0), status_kib(root, "VmHWM") / 1024)
        record_peaks(peaks, root)


def grade_in_worker(folder: Path, out: Path, jobs: int, device: str,
                    scheduler: str | None = None) -> dict:
    """`grade FOLDER --jobs JOBS` as a user runs it (on a Dask LocalCluster with `scheduler`
    "local"), in a fresh process: its time, the CPU time of its whole process tree (once
    every process in it ended and was waited for: the kernels, the warm parents, the
    workers), its scores and its peak memory. Peaks are VmHWM, not ru_maxrss: a process
    started with vfork and exec inherits its parent's ru_maxrss."""
    command = [*GRADE, str(folder), "--out", str(out), "--jobs", str(jobs), "--device",
               device, "--assignment", NOTEBOOK, "--force", "--json"]
    if scheduler:
        command += ["--scheduler", scheduler]
    peaks: dict[str, float] = {}
    stop = threading.Event()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    watcher = threading.Thread(target=watch_peaks, args=(peaks, stop, PEAK_INTERVAL,
                                                         process.pid), daemon=True)
    watcher.start()
    printed, _ = process.communicate()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stop.set()
    watcher.join()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}")
    summary = json.loads(printed[printed.index("{"):])
    results = [r for student in summary["students"].values() for r in student.values()]
    return {
        "jobs": jobs,
        "seconds": seconds,
        "cpu_seconds": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "graded": len(summary["graded"]),
        "faults": summary["faults"],
        "min_score": min((r["score"] for r in results if r["score"] is not None), default=None),
        "max_score": max((r["max_score"] for r in results), default=None),
        "self_peak_rss_mib": peaks.get("self"),
        "children_peak_rss_mib": peaks.get("children"),
        "kernel_peak_rss_mib": peaks.get("kernels"),
    }


def cli_seconds(*args: str) -> float:
    """The median wall time of `grade ARGS` in a fresh interpreter (exit code ignored)."""
    times = []
    for _ in range(CLI_RUNS):
        started = time.perf_counter()
        subprocess.run([*GRADE, *args], capture_output=True)
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def bench_cli() -> dict:
    return {"help": cli_seconds("--help"), "usage_error": cli_seconds("no-such-folder/")}


def bench_single(workdir: Path, gradescope: bool) -> dict:
    """One submission (grader/bench_latency.py), and Gradescope's run_autograder on it,
    against plain execution of the same notebook, each the best of SINGLE_RUNS taken in
    turn, in this run."""
    folder = workdir / "one"
    paths = make_copies(course.current().reference / f"{NOTEBOOK}.ipynb", folder, 1)
    found = bench_one(folder, NOTEBOOK, workdir, lambda: execute_plain(paths))
    if gradescope:
        settings = load_settings(course.current().assignments / f"{NOTEBOOK}.toml")
        found["gradescope"] = bench_gradescope(settings, paths[0], workdir)
    return found


GRADINGS = {"jobs1": (1, None), "jobs2": (2, None), "dask1": (1, "local"),
            "dask2": (2, "local")}  # the batch's runs: jobs, scheduler


def bench_batch(copies: int, device: str, workdir: Path) -> dict:
    """Plain execution, then grading at jobs 1 and 2 and on Dask's one and two local
    workers, of the same `copies` notebooks, after one grading that is not timed (the
    reference stored, the data inflated); each grading again on half as many, for what
    one submission more costs once the run's one-off costs (imports, warm parents, the
    reference read back) are paid."""
    source = course.current().reference / f"{NOTEBOOK}.ipynb"
    folder, half = workdir / "submissions", workdir / "half"
    paths = make_copies(source, folder, copies)
    make_copies(source, half, copies // 2)
    execute_plain([warm_up_notebook(workdir)])  # not timed: disk cache and kernel start
    # Not timed either: the reference observed and stored for these settings, the data
    # inflated, so that no grading below pays what only the first would.
    make_copies(source, workdir / "warm-up-grading", 1)
    grade_in_worker(workdir / "warm-up-grading", workdir / "graded-warm-up", 1, device)
    found: dict = {"plain": {"seconds": execute_plain(paths)}}
    for name, (jobs, scheduler) in GRADINGS.items():
        found[name] = grade_in_worker(folder, workdir / f"graded-{name}", jobs, device,
                                      scheduler)
        found[name]["half_seconds"] = grade_in_worker(
            half, workdir / f"graded-{name}-half", jobs, device, scheduler)["seconds"]
    return found


def marginal(run: dict, copies: int) -> float | None:
    """Seconds one submission more adds to `run`: the difference its half-size run makes,
    per submission."""
    if "half_seconds" not in run:
        return None
    return (run["seconds"] - run["half_seconds"]) / (copies - copies // 2)


# --- (3) the epoch: sliced tensors against a DataLoader ----------------------------------

def bench_audit(workdir: Path) -> dict:
    """`grade audit` of every mutant of the bundled AUDITED assignment, --jobs 2."""
    from grader.audit.run import audit

    settings = load_settings(course.current().assignments / f"{AUDITED}.toml")
    started = time.perf_counter()
    found = audit([settings.resolved()], workdir, jobs=2)
    seconds = time.perf_counter() - started
    return {"assignment": AUDITED, "mutants": len(found.outcomes), "seconds": seconds,
            "per_minute": 60 * len(found.outcomes) / seconds, "score": found.score()}


def initial_parameters(device: str) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(SEED)
    W = torch.normal(0, 0.01, (784, 10), generator=generator).to(device).requires_grad_(True)
    return W, torch.zeros(10, device=device, requires_grad=True)


def train_epoch(batches: Batches, W: torch.Tensor, b: torch.Tensor, functions: dict,
                device: str, lr: float = LR) -> dict:
    """The loop of softmax_probes.train_batches, over any batches, moved to `device`."""
    steps = tuple(functions[n] for n in ("softmax", "cross_entropy", "accuracy"))
    losses, accuracies = [], []
    for X, y in batches:
        X, y = X.to(device).reshape(len(y), -1), y.to(device)
        loss, hits = training_step(steps, W, b, X, y, lr)
        losses.append(loss)
        accuracies.append(hits)
    return {"losses": losses, "accuracies": accuracies}


def timed_epoch(make_batches: Callable[[], Batches], functions: dict, device: str,
                lr: float = LR) -> tuple[float, torch.Tensor, torch.Tensor]:
    """Seconds for one epoch over make_batches(), after a warm-up of a few batches, and
    the trained W and b."""
    warm = itertools.islice(make_batches(), WARMUP_BATCHES)
    train_epoch(warm, *initial_parameters(device), functions, device, lr)
    W, b = initial_parameters(device)
    synchronize(device)
    started = time.perf_counter()
    train_epoch(make_batches(), W, b, functions, device, lr)
    synchronize(device)
    return time.perf_counter() - started, W, b


def sliced_batches(X: torch.Tensor, y: torch.Tensor, order: torch.Tensor,
                   batch_size: int) -> Batches:
    """Batches sliced by `order` from tensors already on the device, as the grader does."""
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        yield X[index], y[index]


def loader_batches(dataset: Dataset, batch_size: int) -> DataLoader:
    """The seeds' loader: shuffled batches, images decoded one by one by the dataset."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=True)


def torchvision_root(source: Path, root: Path) -> Path:
    """`root` laid out as torchvision's FashionMNIST wants it: the four IDX files,
    un-gzipped, in root/FashionMNIST/raw/."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for path in data_files(source):
        inflate(path, raw / path.name.removesuffix(".gz"))
    return root


def evaluate_accuracy(W: torch.Tensor, b: torch.Tensor, functions: dict, device: str) -> float:
    data = load_fashion_mnist()
    X = as_float(data.test_images).reshape(len(data.test_labels), -1).to(device)
    with torch.no_grad():
        y_hat = functions["softmax"](X @ W + b)
    return float(functions["accuracy"](y_hat, data.test_labels.to(device)))


def bench_epoch(device: str, workdir: Path) -> dict:
    """The reference epoch on tensors sliced in memory, then through a torchvision
    DataLoader with ToTensor; both with the reference functions."""
    functions = reference_functions(NOTEBOOK, course.current().reference)
    data = load_fashion_mnist()
    X = as_float(data.train_images).reshape(len(data.train_labels), -1).to(device)
    y = data.train_labels.to(device)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(SEED)).to(device)
    dataset = datasets.FashionMNIST(str(torchvision_root(find_data_dir(), workdir)), train=True,
                                    transform=transforms.ToTensor(), download=False)
    torch.manual_seed(SEED)
    runs = {
        "sliced": timed_epoch(lambda: sliced_batches(X, y, order, BATCH_SIZE), functions,
                              device),
        "dataloader": timed_epoch(lambda: loader_batches(dataset, BATCH_SIZE), functions,
                                  device),
    }
    return {name: {"seconds": seconds,
                   "test_accuracy": evaluate_accuracy(W, b, functions, device)}
            for name, (seconds, W, b) in runs.items()}


# --- figures, table, JSON ----------------------------------------------------------------

def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def ratios(figures: dict) -> dict:
    """grading / plain, jobs 2 / jobs 1, CPU per submission, the projected class and
    DataLoader / sliced, from the raw figures."""
    batch, epoch = figures.get("batch"), figures["epoch"]
    found = {"loader_over_sliced": ratio(epoch["dataloader"]["seconds"],
                                         epoch["sliced"]["seconds"])}
    if batch:
        copies = figures["settings"]["copies"]
        grading = ratio(batch["jobs1"]["seconds"], batch["plain"]["seconds"])
        parallel = ratio(batch["jobs2"]["seconds"], batch["jobs1"]["seconds"])
        each = {name: marginal(batch[name], copies) for name in GRADINGS if name in batch}
        found.update(
            grading_over_plain=grading,
            within_target=None if grading is None else grading <= TARGET_RATIO,
            jobs2_over_jobs1=parallel,
            speedup=ratio(1, parallel),
            marginal_seconds=each,
            marginal_speedup=ratio(each["jobs1"], each["jobs2"]),
            dask_speedup=ratio(batch.get("dask1", {}).get("seconds"),
                               batch.get("dask2", {}).get("seconds")),
            dask_marginal_speedup=ratio(each.get("dask1"), each.get("dask2")),
            cpu_seconds_per_submission=batch["jobs1"].get("cpu_seconds", 0) / copies or None,
            cores_busy={name: ratio(batch[name].get("cpu_seconds"), batch[name]["seconds"])
                        for name in ("jobs1", "jobs2")},
            projected_minutes=min(projected(batch[name], each[name], copies)
                                  for name in ("jobs1", "jobs2")) / 60,
        )
    return found


def projected(run: dict, each: float | None, copies: int) -> float:
    """Seconds PROJECTED submissions would take: the run, and each one more at its marginal
    cost (without one, at the run's own pace, its one-off costs counted again and again)."""
    if each is None:
        return PROJECTED * run["seconds"] / copies
    return run["seconds"] + (PROJECTED - copies) * each


def fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def machine_line(machine: dict) -> str:
    return f"{machine['cpu']}, {machine['cores']} cores, GPU: {machine['gpu'] or 'none'}"


def grading_note(run: dict) -> str:
    return (f"per submission; {fmt(run['seconds'], ' s', 1)} in all, lowest score "
            f"{fmt(run['min_score'], '', 0)}/{fmt(run['max_score'], '', 0)}, "
            f"faults: {len(run['faults'])}")


def batch_rows(batch: dict, found: dict, copies: int, cores: int) -> list[Row]:
    plain, jobs1, jobs2 = batch["plain"], batch["jobs1"], batch["jobs2"]
    return [
        ("(1) plain nbclient execution", fmt(plain["seconds"] / copies, " s"),
         f"per submission; {fmt(plain['seconds'], ' s', 1)} in all, {copies} notebooks"),
        ("    grading, --jobs 1", fmt(jobs1["seconds"] / copies, " s"), grading_note(jobs1)),
        ("    grading / plain", fmt(found["grading_over_plain"], "×"),
         f"target ≤ {TARGET_RATIO:g}×: {'met' if found['within_target'] else 'missed'}"),
        ("    CPU per submission", fmt(found["cpu_seconds_per_submission"], " s"),
         "--jobs 1: the grader, its kernels and everything they ran"),
        ("(2) grading, --jobs 2", fmt(jobs2["seconds"] / copies, " s"), grading_note(jobs2)),
        ("    jobs 2 / jobs 1", fmt(found["jobs2_over_jobs1"], "×"),
         f"speed-up {fmt(found['speedup'], '×')} over {copies}; target ≥ "
         f"{PARALLEL_TARGET:g}×: {met(found['speedup'], PARALLEL_TARGET, at_most=False)}"),
        *marginal_rows(found, ("jobs1", "jobs2"), "marginal_speedup", copies),
        ("    cores kept busy", " / ".join(fmt(found["cores_busy"][name])
                                         for name in ("jobs1", "jobs2")),
         f"CPU seconds over wall seconds at --jobs 1 and 2, of {cores} cores: a second "
         "worker adds only what the first leaves idle"),
        (f"    {PROJECTED} submissions", fmt(found["projected_minutes"], " min", 1),
         f"projected at the faster of --jobs 1 and 2: the run, and {PROJECTED - copies} more "
         f"at the marginal cost; target ≤ {PROJECTED_TARGET:g} min: "
         f"{met(found['projected_minutes'], PROJECTED_TARGET)}"),
    ]


def marginal_rows(found: dict, names: tuple[str, str], speedup: str, copies: int) -> list[Row]:
    """One submission more, at one and two workers, and their ratio, where measured."""
    each = found.get("marginal_seconds", {})
    if each.get(names[0]) is None or each.get(names[1]) is None:
        return []
    return [("    one submission more", fmt(each[names[0]], " s"),
             f"at 1 worker, {fmt(each[names[1]], ' s')} at 2: a speed-up of "
             f"{fmt(found[speedup], '×')}, the one-off costs aside (from {copies} and "
             f"{copies // 2}); target ≥ {PARALLEL_TARGET:g}×: "
             f"{met(found[speedup], PARALLEL_TARGET, at_most=False)}")]


def epoch_rows(epoch: dict, found: dict, device: str) -> list[Row]:
    sliced, loader = epoch["sliced"], epoch["dataloader"]
    return [
        ("(3) epoch, sliced tensors", fmt(sliced["seconds"], " s"),
         f"{device}; test accuracy {fmt(sliced['test_accuracy'], '', 3)}"),
        ("    epoch, DataLoader+ToTensor", fmt(loader["seconds"], " s"),
         f"{device}; test accuracy {fmt(loader['test_accuracy'], '', 3)}"),
        ("    DataLoader / sliced", fmt(found["loader_over_sliced"], "×"), ""),
    ]


def dask_rows(batch: dict, found: dict, copies: int) -> list[Row]:
    rows = []
    for workers in (1, 2):
        run = batch.get(f"dask{workers}")
        if run:
            rows.append((f"(6) Dask, {workers} local worker{'s' * (workers > 1)}",
                         fmt(60 * copies / run["seconds"], "/min", 1),
                         "submissions per minute, --scheduler local; " + grading_note(run)))
    if batch.get("dask1") and batch.get("dask2"):
        speedup = found["dask_speedup"]
        rows.append(("    Dask 2 workers / 1", fmt(speedup, "×"),
                     f"over {copies}; target ≥ {PARALLEL_TARGET:g}×: "
                     f"{met(speedup, PARALLEL_TARGET, False)}"))
        rows += marginal_rows(found, ("dask1", "dask2"), "dask_marginal_speedup", copies)
    return rows


def audit_rows(audited: dict) -> list[Row]:
    return [(f"(7) grade audit {audited['assignment']}", fmt(audited["per_minute"], "/min", 1),
             f"mutants graded per minute: all {audited['mutants']} in "
             f"{fmt(audited['seconds'], ' s', 0)}, {fmt(audited['seconds'] / AUDIT_TARGET)}× "
             f"the {AUDIT_TARGET:g} s target; score {fmt(audited['score'])}")]


def memory_rows(batch: dict) -> list[Row]:
    jobs1, jobs2 = batch["jobs1"], batch["jobs2"]
    return [
        ("(4) grading worker peak RSS", fmt(jobs1["self_peak_rss_mib"], " MiB", 0),
         f"--jobs 1 process; its kernels' peak {fmt(jobs1['kernel_peak_rss_mib'], ' MiB', 0)}"
         f"; target ≤ {MEMORY_TARGET:.0f} MiB: "
         f"{met(jobs1['self_peak_rss_mib'], MEMORY_TARGET)}"),
        ("    pool worker peak, --jobs 2", fmt(jobs2["children_peak_rss_mib"], " MiB", 0),
         f"its kernels' peak {fmt(jobs2['kernel_peak_rss_mib'], ' MiB', 0)}; target ≤ "
         f"{MEMORY_TARGET:.0f} MiB: {met(jobs2['children_peak_rss_mib'], MEMORY_TARGET)}"),
    ]


def met(value: float | None, target: float, at_most: bool = True) -> str:
    if value is None:
        return "-"
    return "met" if (value <= target if at_most else value >= target) else "missed"


def single_rows(single: dict) -> list[Row]:
    """One submission warm and cold, where the warm run's seconds went, and Gradescope."""
    plain = single["plain"]
    warm, cold = ratio(single["warm"], plain), ratio(single["cold"], plain)
    rows = [("(8) one submission, warm", fmt(warm, "×"),
             f"grade {fmt(single['warm'], ' s')} (caches on disk, best of {SINGLE_RUNS}) "
             f"against plain execution {fmt(plain, ' s')} (best of {SINGLE_RUNS}); target "
             f"≤ {SINGLE_TARGET:g}×: {met(warm, SINGLE_TARGET)}"),
            ("    cold", fmt(cold, "×"),
             f"{fmt(single['cold'], ' s')}, an empty temporary folder: data inflated, "
             f"reference observed")]
    rows += [(f"      {span['name']}", fmt(span["seconds"], " s"),
              f"from {fmt(span['start'], ' s')}") for span in single["phases"]]
    gradescope = single.get("gradescope")
    if gradescope:
        rows += [("(9) Gradescope run_autograder", fmt(ratio(gradescope["warm"], plain), "×"),
                  f"{fmt(gradescope['warm'], ' s')} warm, {fmt(gradescope['cold'], ' s')} in "
                  f"a fresh container's temporary folder "
                  f"({fmt(ratio(gradescope['cold'], plain), '×')}); the zip's real layout")]
    return rows


def cli_rows(cli: dict) -> list[Row]:
    return [("(5) grade --help", fmt(cli["help"], " s"), f"median of {CLI_RUNS} fresh starts"),
            ("    a usage error", fmt(cli["usage_error"], " s"), "grade no-such-folder/")]


def table_rows(figures: dict) -> list[Row]:
    found, settings = figures["ratios"], figures["settings"]
    rows = [("machine", "", machine_line(figures["machine"]))]
    if figures.get("batch"):
        rows += batch_rows(figures["batch"], found, settings["copies"],
                           figures["machine"]["cores"])
    rows += epoch_rows(figures["epoch"], found, settings["device"])
    if figures.get("batch"):
        rows += memory_rows(figures["batch"])
    if figures.get("cli"):
        rows += cli_rows(figures["cli"])
    if figures.get("batch"):
        rows += dask_rows(figures["batch"], found, settings["copies"])
    if figures.get("audit"):
        rows += audit_rows(figures["audit"])
    if figures.get("single"):
        rows += single_rows(figures["single"])
    load = figures["machine"].get("load_average_end")
    rows.append(("total", fmt(figures["total_seconds"], " s", 0),
                 "" if load is None else f"load average at the end {fmt(load[0])}"))
    return rows


def format_table(rows: list[Row]) -> str:
    """Rows of (label, figure, note) in aligned columns."""
    label_width = max(len(row[0]) for row in rows)
    figure_width = max(len(row[1]) for row in rows)
    return "\n".join(f"{label:<{label_width}}  {figure:>{figure_width}}  {note}".rstrip()
                     for label, figure, note in rows)


def write_json(figures: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")


# --- the command -------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m grader.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=20,
                        help="copies of the solution notebook in the batch (default 20)")
    parser.add_argument("--out", type=Path, default=Path("bench-results.json"),
                        help="JSON file for the figures (default bench-results.json)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="where the epochs run, in grading and here (default auto)")
    parser.add_argument("--skip-batch", action="store_true",
                        help="time only the epochs (3): no batch grading, no memory figure")
    parser.add_argument("--skip-audit", action="store_true",
                        help=f"leave out grade audit of {AUDITED} (minutes)")
    parser.add_argument("--skip-gradescope", action="store_true",
                        help="leave out run_autograder in the zip's layout (a minute)")
    args = parser.parse_args(argv)
    if args.copies < 1:
        parser.error("--copies must be at least 1")
    try:
        args.device = resolve_device(args.device)
    except ValueError as error:
        parser.error(str(error))
    return args


def run(args: argparse.Namespace) -> dict:
    """Every part of the benchmark; the figures, settings and machine as one dict."""
    started = time.perf_counter()
    figures: dict = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": {
            "copies": args.copies, "device": args.device, "skip_batch": args.skip_batch,
            "skip_audit": args.skip_audit, "skip_gradescope": args.skip_gradescope,
            "batch_size": BATCH_SIZE, "lr": LR, "seed": SEED,
            "warmup_batches": WARMUP_BATCHES, "loader_workers": 0,
            "target_ratio": TARGET_RATIO,
            "grader": bench_settings(args.device).as_dict(),
        },
    }
    with tempfile.TemporaryDirectory(prefix="grader-bench-") as tmp:
        workdir = Path(tmp)
        if not args.skip_batch:
            figures["batch"] = bench_batch(args.copies, args.device, workdir / "batch")
            figures["single"] = bench_single(workdir / "single", not args.skip_gradescope)
        figures["epoch"] = bench_epoch(args.device, workdir / "torchvision")
        if not args.skip_audit:
            figures["audit"] = bench_audit(workdir / "audit")
    figures["cli"] = bench_cli()
    figures["ratios"] = ratios(figures)
    figures["machine"]["load_average_end"] = os.getloadavg()
    figures["total_seconds"] = time.perf_counter() - started
    return figures


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    figures = run(args)
    write_json(figures, args.out)
    print(format_table(table_rows(figures)))
    print(f"figures written to {args.out}")


if __name__ == "__main__":
    main()
