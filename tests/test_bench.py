"""The benchmark's pure helpers, on tiny inputs: no grading, no full epoch."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import time

import torch
from conftest import NOTEBOOK, TEST_COURSE
from torch.utils.data import TensorDataset

from grader.bench import (
    cpu_model,
    format_table,
    initial_parameters,
    loader_batches,
    make_copies,
    ratio,
    ratios,
    record_peaks,
    sliced_batches,
    table_rows,
    timed_epoch,
    torchvision_root,
    train_epoch,
    write_json,
)
from grader.grading.reference import reference_functions
from grader.kernel.data import FILES


def figures() -> dict:
    grading = {"faults": [], "min_score": 44, "max_score": 44, "self_peak_rss_mib": 900.0,
               "children_peak_rss_mib": 700.0, "kernel_peak_rss_mib": 650.0}
    found = {
        "machine": {"cpu": "Test CPU", "cores": 2, "gpu": None, "load_average_end": [1.5]},
        "settings": {"copies": 4, "device": "cpu"},
        "batch": {"plain": {"seconds": 20.0},
                  "jobs1": {**grading, "seconds": 30.0, "cpu_seconds": 48.0},
                  "jobs2": {**grading, "seconds": 18.0, "cpu_seconds": 50.0},
                  "dask1": {**grading, "seconds": 24.0}, "dask2": {**grading, "seconds": 16.0}},
        "epoch": {"sliced": {"seconds": 1.0, "test_accuracy": 0.78},
                  "dataloader": {"seconds": 6.5, "test_accuracy": 0.79}},
        "cli": {"help": 0.25, "usage_error": 0.5},
        "total_seconds": 300.0,
    }
    found["ratios"] = ratios(found)
    return found


def test_ratio_is_none_without_a_denominator():
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(1.0, 0.0) is None
    assert ratio(None, 1.0) is None


def test_ratios_compare_grading_jobs_and_loader():
    found = figures()["ratios"]
    assert found["grading_over_plain"] == 1.5
    assert found["within_target"] is False
    assert found["cpu_seconds_per_submission"] == 12.0
    assert found["projected_minutes"] == 500 * 4.5 / 60  # at jobs 2, the faster
    assert found["jobs2_over_jobs1"] == 0.6
    assert round(found["speedup"], 3) == round(1 / 0.6, 3)
    assert found["loader_over_sliced"] == 6.5
    assert found["cores_busy"] == {"jobs1": 1.6, "jobs2": 50.0 / 18.0}  # CPU over wall


def test_the_table_says_how_many_cores_each_grading_kept_busy():
    text = format_table(table_rows(figures()))
    assert re.search(r"cores kept busy +1\.60 / 2\.78 +CPU seconds over wall seconds at "
                     r"--jobs 1 and 2, of 2 cores", text)


def test_a_class_is_projected_from_what_one_submission_more_costs():
    """Each grading again on half the copies: one submission more costs the difference per
    copy; 500 are the run and the rest at that cost, not the run's one-off costs again."""
    found = figures()
    for name, half in (("jobs1", 18.0), ("jobs2", 12.0), ("dask1", 14.0), ("dask2", 10.0)):
        found["batch"][name]["half_seconds"] = half
    found["ratios"] = ratios(found)
    each = found["ratios"]["marginal_seconds"]
    assert each == {"jobs1": 6.0, "jobs2": 3.0, "dask1": 5.0, "dask2": 3.0}  # over 4 - 2
    assert found["ratios"]["marginal_speedup"] == 2.0
    assert found["ratios"]["dask_marginal_speedup"] == 5.0 / 3.0
    assert found["ratios"]["projected_minutes"] == (18.0 + 496 * 3.0) / 60
    text = format_table(table_rows(found))
    assert "one submission more" in text and "a speed-up of 2.00×" in text
    assert "target ≥ 1.8×: met" in text and "a speed-up of 1.67×" in text


def test_table_names_the_machine_and_aligns_the_figures():
    rows = table_rows(figures())
    text = format_table(rows)
    assert "Test CPU, 2 cores, GPU: none" in text
    assert "1.50×" in text and "target ≤ 0.5×: missed" in text
    assert "12.00 s" in text and "37.5 min" in text
    assert "grade --help" in text and "0.25 s" in text
    assert "Dask, 1 local worker" in text and "10.0/min" in text and "15.0/min" in text
    assert "5.00 s" in text and "7.50 s" in text and "6.50×" in text
    assert "900 MiB" in text and "kernels' peak 650 MiB" in text
    end = max(len(row[0]) for row in rows) + 2 + max(len(row[1]) for row in rows)
    assert all(line[:end].endswith(figure)
               for line, (_, figure, _) in zip(text.splitlines(), rows, strict=True))


def test_table_without_the_batch_shows_only_the_epochs():
    found = figures()
    del found["batch"]
    found["ratios"] = ratios(found)
    text = format_table(table_rows(found))
    assert "(3) epoch" in text and "(1)" not in text and "(4)" not in text


def test_json_round_trips(tmp_path):
    path = tmp_path / "out" / "bench.json"
    write_json(figures(), path)
    assert json.loads(path.read_text())["ratios"]["loader_over_sliced"] == 6.5


def test_cpu_model_reads_the_model_name(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU @ 2GHz\n")
    assert cpu_model(cpuinfo) == "Some CPU @ 2GHz"


def test_copies_are_named_per_student(tmp_path):
    source = tmp_path / "nb.ipynb"
    source.write_text("{}")
    paths = make_copies(source, tmp_path / "class", 3)
    assert [p.name for p in paths] == ["alice-00.ipynb", "alice-01.ipynb", "alice-02.ipynb"]
    assert all(p.read_text() == "{}" for p in paths)


def test_torchvision_root_holds_the_files_ungzipped(tmp_path):
    source = tmp_path / "gz"
    source.mkdir()
    for stem in FILES.values():
        with gzip.open(source / f"{stem}.gz", "wb") as handle:
            handle.write(stem.encode())
    raw = torchvision_root(source, tmp_path / "root") / "FashionMNIST" / "raw"
    assert {p.name: p.read_text() for p in raw.iterdir()} == {s: s for s in FILES.values()}


def test_an_epoch_runs_over_a_dataloader_and_over_slices():
    functions = reference_functions(NOTEBOOK, TEST_COURSE.reference)
    images, labels = torch.rand(40, 1, 28, 28), torch.randint(0, 10, (40,))
    seconds, W, b = timed_epoch(lambda: loader_batches(TensorDataset(images, labels), 8),
                                functions, "cpu")
    assert seconds > 0
    assert not torch.equal(W, initial_parameters("cpu")[0])
    flat, order = images.reshape(40, -1), torch.randperm(40)
    trained = train_epoch(sliced_batches(flat, labels, order, 16), *initial_parameters("cpu"),
                          functions, "cpu")
    assert len(trained["losses"]) == 3 and all(0 <= a <= 1 for a in trained["accuracies"])


def test_peaks_cover_the_children():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.5)
        peaks: dict[str, float] = {}
        record_peaks(peaks, os.getpid())
        assert peaks.get("children", 0) > 1
        assert "kernels" not in peaks
    finally:
        child.kill()
        child.wait()


def test_the_audit_row_gives_mutants_per_minute_against_the_target():
    found = figures()
    found["audit"] = {"assignment": "linear_regression", "mutants": 54, "seconds": 90.0,
                      "per_minute": 36.0, "score": 0.95}
    text = format_table(table_rows(found))
    assert "grade audit linear_regression" in text and "36.0/min" in text
    assert "all 54 in 90 s, 0.30× the 300 s target" in text


def test_the_single_submission_rows_compare_with_plain_execution_and_say_where_it_went():
    found = figures()
    found["single"] = {
        "plain": 5.0, "warm": 5.5, "cold": 9.0,
        "phases": [{"name": "the grader's imports", "start": 0.0, "seconds": 2.1},
                   {"name": "the notebook and the probes, in the kernel", "start": 3.0,
                    "seconds": 1.2}],
        "gradescope": {"cold": 8.0, "warm": 7.5}}
    text = format_table(table_rows(found))
    assert "one submission, warm" in text and "1.10×" in text and "missed" in text
    assert "grade 5.50 s (caches on disk, best of 2) against plain execution 5.00 s" in text
    assert "1.80×" in text and "9.00 s, an empty temporary folder" in text
    assert re.search(r"the notebook and the probes, in the kernel +1\.20 s +from 3\.00 s", text)
    assert "Gradescope run_autograder" in text and "1.50×" in text and "(1.60×)" in text


def test_the_parallel_rows_hold_the_targets():
    text = format_table(table_rows(figures()))
    assert "speed-up 1.67× over 4; target ≥ 1.8×: missed" in text  # 30 s over 18 s
    assert "Dask 2 workers / 1" in text and "1.50×" in text
    assert "target ≤ 1126 MiB: met" in text
