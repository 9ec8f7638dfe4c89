"""Reading what came back from the kernel: plain data only, checked before any check reads it.

This is the trust boundary. The file is loaded with ``weights_only=True`` (no pickled
objects, no code), capped in size, and every entry is validated; whatever is wrong
becomes a failed observation with a reason instead of an exception.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from grader.probing import failure

MAX_FILE_BYTES = 256 * 1024 * 1024


class BadObservations(Exception):
    """The observation file as a whole cannot be used."""


def load_observations(path: Path) -> dict[str, dict]:
    """The observations in `path`, validated; an absent file means nothing was observed."""
    if not path.exists():
        return {}
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise BadObservations(f"the observations are {size / 2**20:.0f} MiB, over the "
                              f"{MAX_FILE_BYTES / 2**20:.0f} MiB cap")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is the same verdict
        raise BadObservations(f"the observations could not be read safely: {error}") from None
    if not isinstance(raw, dict):
        raise BadObservations("the observations are not a mapping")
    return {str(key): validated(entry) for key, entry in raw.items()}


def validated(entry: Any) -> dict:
    """An entry is {'ok': True, 'value': …} or a failure with string fields."""
    if not isinstance(entry, dict) or not isinstance(entry.get("ok"), bool):
        return failure("Malformed", "the observation was not in the grader's format")
    if entry["ok"]:
        if "value" not in entry or not plain_data(entry["value"]):
            return failure("Malformed", "the observation held something other than plain data")
        return {"ok": True, "value": entry["value"]}
    fields = [entry.get(k, "") for k in ("error", "message", "traceback")]
    if not all(isinstance(f, str) for f in fields):
        return failure("Malformed", "the failure report was not in the grader's format")
    return failure(*fields)


def plain_data(value: Any, depth: int = 0) -> bool:
    """Tensors, numbers, strings, None, and lists or str-keyed dicts of them, 8 levels deep."""
    if depth > 8:
        return False
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, torch.Tensor):
        return type(value) is torch.Tensor and not value.is_sparse
    if isinstance(value, list | tuple):
        return all(plain_data(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain_data(v, depth + 1) for k, v in value.items())
    return False
