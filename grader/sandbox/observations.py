"""Reading what came back from the kernel: plain data only, within bounds, checked before
any check reads it.

This is the trust boundary. Observations arrive as text on the kernel's channel, one
message per probe; the kernel may send anything there, so every message is bounded before
it is decoded (its length), while it is decoded (a zip of stored records only, no record
that inflates, ``torch.load(weights_only=True)``: no pickled objects, no code) and after
(dense tensors only, no views that repeat one element millions of times, no container
reached twice, a cap on depth, items and bytes). Whatever is wrong becomes a failed
observation with a reason, never an exception in the grader and never a stall.
"""

from __future__ import annotations

import binascii
import io
import zipfile
from dataclasses import dataclass, field
from typing import Any

import torch

from grader.kernel.probing import failure

MAX_MESSAGE_CHARS = 48 * 2**20  # one observation, base64
MAX_TOTAL_BYTES = 160 * 2**20  # everything one kernel may hand back
MAX_TENSOR_BYTES = 64 * 2**20  # all tensors of one observation, once loaded
MAX_NODES = 200_000  # containers and scalars in one observation
MAX_DEPTH = 8
MAX_RECORDS = 4_096  # zip members: one per tensor storage, and a few of torch's own
ALLOWED_DTYPES = {torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.uint8,
                  torch.int8, torch.int16, torch.int32, torch.int64, torch.bool}


class BadObservations(Exception):
    """An observation message that cannot be used, with the reason."""


def decode(text: Any, max_chars: int = MAX_MESSAGE_CHARS) -> Any:
    """The plain data in one base64 message, within every bound of this module."""
    if not isinstance(text, str):
        raise BadObservations("the message is not text")
    if len(text) > max_chars:
        raise BadObservations(f"the message is {len(text) / 2**20:.0f} MiB, over the "
                              f"{max_chars / 2**20:.0f} MiB cap")
    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError) as error:
        raise BadObservations(f"the message is not base64: {error}") from None
    return load_bounded(raw)


def load_bounded(raw: bytes, max_tensor_bytes: int = MAX_TENSOR_BYTES) -> Any:
    """torch.load of `raw` after checking that nothing in it can inflate, then validated."""
    expect_stored_records(raw)
    try:
        value = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is the same verdict
        raise BadObservations(f"the message could not be read safely: "
                              f"{type(error).__name__}: {str(error)[:200]}") from None
    Walk(max_tensor_bytes).check(value, 0)
    return value


def expect_stored_records(raw: bytes) -> None:
    """A torch file is a zip; its records must be stored as they are, so loading one costs
    no more memory than its bytes here (a deflated record can inflate a thousandfold)."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            records = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise BadObservations(f"the message is not a torch file: {error}") from None
    if len(records) > MAX_RECORDS:
        raise BadObservations(f"the message holds {len(records)} records, over {MAX_RECORDS}")
    for record in records:
        if record.compress_type != zipfile.ZIP_STORED or record.file_size > len(raw):
            raise BadObservations(f"the record {record.filename[:80]!r} is compressed: "
                                  "only stored records are read")


@dataclass
class Walk:
    """One pass over a loaded value: a tree of plain data, bounded in size."""

    max_tensor_bytes: int = MAX_TENSOR_BYTES
    nodes: int = 0
    tensor_bytes: int = 0
    seen: set[int] = field(default_factory=set)

    def check(self, value: Any, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise BadObservations(f"the message holds more than {MAX_NODES} items")
        if depth > MAX_DEPTH:
            raise BadObservations(f"the message nests deeper than {MAX_DEPTH} levels")
        if value is None or isinstance(value, bool | float | str):
            return
        if isinstance(value, int):
            if value.bit_length() > 64:
                raise BadObservations("the message holds an integer wider than 64 bits")
            return
        if isinstance(value, torch.Tensor):
            self.check_tensor(value)
            return
        if not isinstance(value, list | tuple | dict):
            raise BadObservations(f"the message holds a {type(value).__name__}, not plain data")
        if id(value) in self.seen:  # shared sublists: a few KB can stand for 100**7 leaves
            raise BadObservations("the message reuses one container in several places")
        self.seen.add(id(value))
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise BadObservations("the message has a key that is not a string")
                self.check(item, depth + 1)
        else:
            for item in value:
                self.check(item, depth + 1)

    def check_tensor(self, tensor: torch.Tensor) -> None:
        """Dense, contiguous, on the CPU, of a plain dtype: what the kernel's probe sends."""
        if type(tensor) is not torch.Tensor or tensor.layout != torch.strided:
            raise BadObservations("the message holds a tensor of another kind than a dense one")
        if tensor.dtype not in ALLOWED_DTYPES:
            raise BadObservations(f"the message holds a tensor of dtype {tensor.dtype}")
        if not tensor.is_contiguous():  # a stride-0 view of 2 KB can claim 50 million items
            raise BadObservations("the message holds a tensor that is a view, not dense data")
        self.tensor_bytes += tensor.numel() * tensor.element_size()
        if self.tensor_bytes > self.max_tensor_bytes:
            raise BadObservations(f"the message's tensors exceed "
                                  f"{self.max_tensor_bytes / 2**20:.0f} MiB")


def validated(entry: Any) -> dict:
    """An entry is {'ok': True, 'value': …} or a failure with string fields."""
    if not isinstance(entry, dict) or not isinstance(entry.get("ok"), bool):
        return failure("Malformed", "the observation was not in the grader's format")
    if entry["ok"]:
        if "value" not in entry:
            return failure("Malformed", "the observation held no value")
        return {"ok": True, "value": entry["value"]}
    fields = [entry.get(k, "") for k in ("error", "message", "traceback")]
    if not all(isinstance(f, str) for f in fields):
        return failure("Malformed", "the failure report was not in the grader's format")
    return failure(*fields)


@dataclass
class ObservationReader:
    """What one kernel hands back, message by message, within a total budget.

    Only the keys the current step asked for are taken from it (`expect`), so an
    observation sent in another cell, before its inputs or after its timing, counts for
    nothing; the first copy of a key stands."""

    budget: int = MAX_TOTAL_BYTES
    observations: dict[str, dict] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    expected: frozenset[str] = frozenset()

    def expect(self, keys: list[str] | frozenset[str]) -> None:
        self.expected = frozenset(keys)

    def receive(self, text: Any) -> None:
        size = len(text) if isinstance(text, str) else 0
        if size > self.budget:
            self.problems.append("the notebook sent back more than the grader reads; the "
                                 "rest was dropped")
            self.budget = 0
            return
        self.budget -= size
        try:
            message = decode(text)
        except BadObservations as error:
            self.problems.append(f"an observation could not be used: {error}")
            return
        if not isinstance(message, dict):
            self.problems.append("an observation was not in the grader's format")
            return
        for key, entry in message.items():
            if key in self.expected and key not in self.observations:
                self.observations[key] = validated(entry)
