"""Shards: the K-th of N slices of a class, for a batch scheduler's job array (Slurm's
`--array=1-N`, a Kubernetes Indexed Job), each graded into an output folder of its own and
merged by `grade collect`.

A student's shard follows from their name alone (a hash, the same on every machine and in
every Python), so the slices never overlap, and a submission added later joins one shard
without moving anyone else's: each shard's output folder stays resumable.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from grader.grading.results import write_atomically

AUTO = "auto"
MARKER = "shard.json"  # in a shard's output folder: which shard of how many it holds
SLURM_INDEX = "SLURM_ARRAY_TASK_ID"  # the array index as submitted: --array=1-N
KUBERNETES_INDEX = "JOB_COMPLETION_INDEX"  # 0 to N-1


class ShardError(ValueError):
    """A --shard that names no slice, with the form it takes."""


@dataclass(frozen=True)
class Shard:
    index: int  # from 1
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, student: str) -> bool:
        number = int.from_bytes(hashlib.sha256(student.encode()).digest()[:8], "big")
        return number % self.count == self.index - 1


def mark(out: Path, shard: Shard | None) -> None:
    """Record in `out` which shard it holds, for `grade collect` to check; a whole class
    graded into it (no shard) holds no marker."""
    if shard is None:
        (out / MARKER).unlink(missing_ok=True)
    else:
        write_atomically(out / MARKER, json.dumps({"index": shard.index, "count": shard.count}))


USAGE = (f"--shard takes K/N, the K-th of N slices (1 <= K <= N), e.g. 2/8; or {AUTO}/N, K "
         f"then being ${SLURM_INDEX} (submit the array as --array=1-N) or "
         f"${KUBERNETES_INDEX} + 1 (a Kubernetes Indexed Job counts from 0)")


def parse_shard(text: str, environ: dict[str, str] | None = None) -> Shard:
    """K/N, or auto/N with K from the job array's environment."""
    environ = os.environ if environ is None else environ
    index_text, slash, count_text = text.partition("/")
    if not slash or not count_text.isdigit() or int(count_text) < 1:
        raise ShardError(f"--shard {text}: {USAGE}")
    count = int(count_text)
    if index_text == AUTO:
        index_text, offset = index_from(environ)
    else:
        offset = 0
    if not index_text.isdigit():
        raise ShardError(f"--shard {text}: {USAGE}")
    index = int(index_text) + offset
    if not 1 <= index <= count:
        raise ShardError(f"--shard {text}: shard {index} of {count} does not exist; {USAGE}")
    return Shard(index, count)


def index_from(environ: dict[str, str]) -> tuple[str, int]:
    """The job array's index and what to add to make it count from 1."""
    if environ.get(SLURM_INDEX):
        return environ[SLURM_INDEX], 0
    if environ.get(KUBERNETES_INDEX):
        return environ[KUBERNETES_INDEX], 1
    raise ShardError(f"--shard {AUTO}/N: neither ${SLURM_INDEX} nor ${KUBERNETES_INDEX} is "
                     "set; run it as a Slurm array task or a Kubernetes Indexed Job, or give K")


def read_marker(out: Path) -> Shard | None:
    """The shard an output folder says it holds; None for a whole class's folder."""
    try:
        data = json.loads((out / MARKER).read_text(encoding="utf-8"))
        return Shard(int(data["index"]), int(data["count"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise ShardError(f"{out / MARKER} is damaged ({error}): grade that shard again") from None
