"""The trust boundary: only plain data crosses back from the kernel, validated on arrival."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grader import observations
from grader.observations import BadObservations, load_observations
from grader.probing import Probe, plain


class Sneaky:
    def __eq__(self, other):
        return True


class SubTensor(torch.Tensor):
    pass


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "obs.pt"
    torch.save({"softmax.values": {"ok": True, "value": Sneaky()}}, path)
    with pytest.raises(BadObservations, match="could not be read safely"):
        load_observations(path)


def test_a_file_over_the_cap_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "obs.pt"
    torch.save({"k": {"ok": True, "value": torch.zeros(1000)}}, path)
    monkeypatch.setattr(observations, "MAX_FILE_BYTES", 100)
    with pytest.raises(BadObservations, match="cap"):
        load_observations(path)


def test_garbage_is_refused(tmp_path):
    path = tmp_path / "obs.pt"
    path.write_bytes(b"\x00not a torch file")
    with pytest.raises(BadObservations):
        load_observations(path)


@pytest.mark.parametrize("entry, error", [
    ("just a string", "Malformed"),
    ({"ok": "yes", "value": 1}, "Malformed"),
    ({"ok": True}, "Malformed"),
    ({"ok": False, "error": 3, "message": "m", "traceback": ""}, "Malformed"),
    ({"ok": False, "error": "ValueError", "message": "bad", "traceback": "tb"}, "ValueError"),
])
def test_malformed_entries_become_failures(tmp_path, entry, error):
    path = tmp_path / "obs.pt"
    torch.save({"k": entry}, path)
    loaded = load_observations(path)["k"]
    assert loaded["ok"] is False and loaded["error"] == error


def test_a_missing_file_means_nothing_observed(tmp_path):
    assert load_observations(tmp_path / "absent.pt") == {}


def test_plain_turns_foreign_values_into_markers():
    assert plain(np.zeros(3))["__kind__"] == "object"
    assert plain(Sneaky())["type"].endswith("Sneaky")
    assert type(plain(torch.zeros(2).as_subclass(SubTensor))) is torch.Tensor
    assert plain(torch.zeros(3_000_000))["__kind__"] == "too_large"
    assert plain(list(range(10_000)))["__kind__"] == "too_long"
    grad = torch.ones(2, requires_grad=True) * 2
    assert plain(grad).requires_grad is False


def test_probe_records_errors_timeouts_and_missing_functions(tmp_path):
    def spin():
        while True:
            pass

    def broken():
        raise KeyError("boom")

    probe = Probe({"spin": spin, "broken": broken, "number": 3}, {}, tmp_path / "o.pt", 0.2)
    for key in ("spin", "broken", "absent", "number"):
        probe.record(key, lambda p, key=key: p.student(key)())
    saved = load_observations(tmp_path / "o.pt")
    assert saved["spin"]["error"] == "Timeout"
    assert saved["broken"]["error"] == "KeyError" and "boom" in saved["broken"]["traceback"]
    assert saved["absent"]["error"] == "Missing"
    assert saved["number"]["error"] == "Missing" and "not a function" in saved["number"]["message"]
