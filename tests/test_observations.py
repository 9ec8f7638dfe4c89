"""The trust boundary: only plain data crosses back from the kernel, read within bounds.

Each message here is one a hostile kernel could send on its channel; each must be refused
quickly, with a reason, and with the grader's memory no larger than the message.
"""

from __future__ import annotations

import base64
import io
import resource
import time
import zipfile

import numpy as np
import pytest
import torch

from grader.kernel.probing import Probe, encode, plain
from grader.sandbox.observations import BadObservations, ObservationReader, decode


class Sneaky:
    def __eq__(self, other):
        return True


class SubTensor(torch.Tensor):
    pass


def message(value) -> str:
    return encode({"k": {"ok": True, "value": value}})


def as_text(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def deflated(raw: bytes) -> bytes:
    """The same torch file with its tensor records compressed: a few KB that inflate."""
    source, out = zipfile.ZipFile(io.BytesIO(raw)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for record in source.infolist():
            method = zipfile.ZIP_DEFLATED if "/data/" in record.filename else zipfile.ZIP_STORED
            target.writestr(record.filename, source.read(record), compress_type=method)
    return out.getvalue()


def refused(text: str) -> str:
    started = time.perf_counter()
    with pytest.raises(BadObservations) as error:
        decode(text)
    assert time.perf_counter() - started < 5, "a refusal must be quick"
    return str(error.value)


def test_plain_data_round_trips():
    value = [torch.arange(6.0).reshape(2, 3), {"n": 3, "x": 0.5, "s": "text", "none": None}]
    loaded = decode(message(value))["k"]["value"]
    assert torch.equal(loaded[0], value[0]) and loaded[1] == value[1]


def test_pickled_objects_are_refused():
    buffer = io.BytesIO()
    torch.save({"k": {"ok": True, "value": Sneaky()}}, buffer)
    assert "could not be read safely" in refused(as_text(buffer.getvalue()))


def test_shared_sublists_are_refused_at_once():
    """2.7 KB of pickled lists sharing one another stand for 100**7 leaves."""
    dag = [0] * 100
    for _ in range(3):
        dag = [dag] * 100
    assert "reuses one container" in refused(message(dag))


def test_deep_nesting_is_refused():
    deep: list = []
    for _ in range(20):
        deep = [deep]
    assert "deeper" in refused(message(deep))


def test_a_record_that_would_inflate_is_refused_before_loading():
    buffer = io.BytesIO()
    torch.save({"k": {"ok": True, "value": torch.zeros(5_000_000)}}, buffer)
    bomb = deflated(buffer.getvalue())
    assert len(bomb) < len(buffer.getvalue()) / 100
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert "compressed" in refused(as_text(bomb))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 10_000  # KiB


def test_a_stride_zero_view_is_refused():
    """2 KB on disk that claim 50 million elements: checks would expand them."""
    assert "view" in refused(message(torch.zeros(1).expand(50_000_000)))


def test_tensors_beyond_the_byte_cap_are_refused():
    """One storage named three times: 28 MiB sent, 84 MiB for the checks to walk."""
    big = torch.zeros(7 * 2**20)
    assert "exceed" in refused(message([big, big, big]))


@pytest.mark.parametrize("value", [torch.zeros(3, dtype=torch.complex64),
                                   torch.zeros(3).to_sparse(), 10**30])
def test_odd_tensors_and_huge_integers_are_refused(value):
    refused(message(value))


@pytest.mark.parametrize("text", ["not base64!", as_text(b"not a zip"), 42,
                                  "A" * (49 * 2**20)])
def test_messages_that_are_not_torch_files_are_refused(text):
    with pytest.raises(BadObservations):
        decode(text)


def test_the_reader_takes_only_what_the_step_asked_for_and_the_first_copy():
    reader = ObservationReader()
    reader.expect(["softmax.values"])
    reader.receive(encode({"softmax.values": {"ok": True, "value": 1.0},
                           "epoch.run": {"ok": True, "value": 1.0}}))
    reader.receive(encode({"softmax.values": {"ok": True, "value": 2.0}}))
    reader.expect([])
    reader.receive(encode({"epoch.run": {"ok": True, "value": 1.0}}))
    assert reader.observations == {"softmax.values": {"ok": True, "value": 1.0}}


def test_the_reader_stops_at_its_budget_and_says_so():
    reader = ObservationReader(budget=1000)
    reader.expect(["k"])
    reader.receive(message(torch.zeros(1000)))
    assert reader.observations == {} and "more than the grader reads" in reader.problems[0]


def test_a_malformed_entry_is_a_failed_observation():
    reader = ObservationReader()
    reader.expect(["a", "b", "c"])
    reader.receive(encode({"a": {"ok": "yes"}, "b": {"ok": False, "error": 3}, "c": [1]}))
    assert {key: entry["error"] for key, entry in reader.observations.items()} == \
        dict.fromkeys("abc", "Malformed")


def test_plain_turns_foreign_values_into_markers():
    assert plain(np.zeros(3))["__kind__"] == "object"
    assert plain(Sneaky())["type"].endswith("Sneaky")
    assert type(plain(torch.zeros(2).as_subclass(SubTensor))) is torch.Tensor
    assert plain(torch.zeros(3_000_000))["__kind__"] == "too_large"
    assert plain(list(range(10_000)))["__kind__"] == "too_long"
    grad = torch.ones(2, requires_grad=True) * 2
    assert plain(grad).requires_grad is False
    assert plain(torch.ones(4, 4)[:, 0]).is_contiguous()


def test_probe_publishes_each_observation_with_errors_timeouts_and_missing_functions():
    def spin():
        while True:
            pass

    def broken():
        raise KeyError("boom")

    sent = ObservationReader()
    sent.expect(["spin", "broken", "absent", "number"])
    probe = Probe({"spin": spin, "broken": broken, "number": 3}, {},
                  lambda key, entry: sent.receive(encode({key: entry})), 0.2)
    for key in ("spin", "broken", "absent", "number"):
        probe.record(key, lambda p, key=key: p.student(key)())
    saved = sent.observations
    assert saved["spin"]["error"] == "Timeout"
    assert saved["broken"]["error"] == "KeyError" and "boom" in saved["broken"]["traceback"]
    assert saved["absent"]["error"] == "Missing"
    assert saved["number"]["error"] == "Missing" and "not a function" in saved["number"]["message"]
