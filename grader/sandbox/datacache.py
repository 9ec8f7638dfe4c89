"""The grader's copy of a data set inflated from its gzip files, for every kernel to read
raw, verified against a manifest of sizes and digests whenever it is used."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from time import time_ns
from typing import BinaryIO

from grader.authoring.datasets import DataSet
from grader.grading.cache import (
    create_file,
    default_root,
    fingerprint,
    load_verified,
    open_owned,
    owned_folder,
    store_verified,
    write_atomically,
)

MANIFEST = "manifest"
MANIFEST_MAX_BYTES = 4096
CHUNK = 1 << 20
MAX_INFLATED = 1 << 28  # the largest file of the data sets declared is 47 MB
# File times advance by clock ticks (a second on some filesystems): a file changed within a
# tick of its check may keep its times, so only a check begun this long after the file's
# last change may vouch for it by its times alone.
RACY_NS = 1_000_000_000


def data_stamp(sources: list[Path]) -> str:
    """The files' paths, sizes and times: a new stamp when the data changes."""
    return "".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns};" for p in sources)


def data_digest(sources: list[Path]) -> str:
    """The files' names and contents: the same data wherever it lies (a copy shipped in
    the Gradescope zip has other paths and times), read once a process while its stamp
    stays the same."""
    return _digest_of(tuple(sources), data_stamp(sources))


@cache
def _digest_of(sources: tuple[Path, ...], stamp: str) -> str:
    digest = hashlib.sha256()
    for path in sorted(sources, key=lambda p: p.name):
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Entry:
    """What a cached file must hold: its size and sha256, as written."""

    size: int
    sha256: str


Stamp = tuple[int, int, int, int]
_VERIFIED: dict[Path, tuple[Entry, Stamp]] = {}  # path -> entry and stamp at its last full check


def unpacked_dir(data: DataSet, folder: Path, cache_root: Path | None = None) -> Path:
    """`folder`, which holds `data`, with its gzipped files inflated into the cache, so that
    every kernel reads raw bytes instead of inflating 30 MB again; `folder` when none is
    gzipped.

    The copy is named after the sources' data_stamp and readable by every uid (kernels run
    under their own). It is checked against its manifest on every use, and a file that is
    damaged, missing, a link or not a regular file of ours is inflated again: one bad copy
    would otherwise cost every later student the marks of the exercises that read it."""
    sources = data.files(folder)
    if all(path.suffix != ".gz" for path in sources):
        return folder
    root = owned_folder(cache_root or default_root(), 0o755)
    target = owned_folder(root / f"{data.slug}-{fingerprint(data_stamp(sources))}", 0o755)
    recorded = read_manifest(target, data.stems)
    entries = {stem: ensure_inflated(target / stem, source, recorded.get(stem))
               for stem, source in zip(data.stems, sources, strict=True)}
    if entries != recorded:  # written last: a manifest vouches only for finished files
        store_verified(target / MANIFEST, json.dumps(
            {stem: asdict(entry) for stem, entry in entries.items()}).encode())
    return target


def read_manifest(target: Path, stems: tuple[str, ...]) -> dict[str, Entry]:
    """The entries recorded for the files `stems` in `target`; {} when the manifest is
    missing or not as written, so that every file is inflated again."""
    raw = load_verified(target / MANIFEST, MANIFEST_MAX_BYTES)
    if raw is None:
        return {}
    try:
        recorded = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(recorded, dict) or set(recorded) != set(stems):
        return {}
    entries = {stem: entry_from(fields) for stem, fields in recorded.items()}
    return {} if None in entries.values() else entries


def entry_from(fields: object) -> Entry | None:
    if not isinstance(fields, dict) or set(fields) != {"size", "sha256"}:
        return None
    size, sha256 = fields["size"], fields["sha256"]
    if type(size) is not int or size < 0 or not isinstance(sha256, str) or len(sha256) != 64:
        return None
    return Entry(size, sha256)


def ensure_inflated(path: Path, source: Path, recorded: Entry | None) -> Entry:
    """The entry of `path` once it holds `source` inflated: `recorded` if the file matches
    it, else that of a fresh copy that replaces it."""
    if recorded is not None and verified(path, recorded):
        return recorded
    return write_atomically(path, lambda partial: inflate(source, partial))


def verified(path: Path, entry: Entry) -> bool:
    """Whether `path` holds what `entry` records. The first check in a process reads the
    whole file; a later one compares the file's stamp with the one that check saw, and
    reads it all again if anything differs (ctime cannot be set back from user space)."""
    try:
        if _VERIFIED.get(path) == (entry, stamp(os.lstat(path))):
            return True
        started = time_ns()
        fd, status = open_owned(path, entry.size)
        with os.fdopen(fd, "rb") as handle:
            if digest_of(handle, entry.size) != entry:
                return False
    except OSError:
        return False
    if status.st_ctime_ns < started - RACY_NS:
        _VERIFIED[path] = (entry, stamp(status))
    return True


def stamp(status: os.stat_result) -> Stamp:
    return status.st_size, status.st_ino, status.st_mtime_ns, status.st_ctime_ns


def digest_of(handle: BinaryIO, limit: int, copy: BinaryIO | None = None) -> Entry:
    """Size and sha256 of what `handle` holds, reading at most `limit` + 1 bytes; each
    chunk is also written to `copy`, if given, so that a copy is digested as it is made."""
    digest, size = hashlib.sha256(), 0
    while size <= limit and (chunk := handle.read(min(CHUNK, limit + 1 - size))):
        digest.update(chunk)
        size += len(chunk)
        if copy is not None:
            copy.write(chunk)
    return Entry(size, digest.hexdigest())


def inflate(source: Path, target: Path) -> Entry:
    """Inflate (or copy) `source` into a new file `target`; what was written. A source that
    inflates past MAX_INFLATED is an error, not a full disk."""
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rb") as src, create_file(target) as dst:
        written = digest_of(src, MAX_INFLATED, dst)
    if written.size > MAX_INFLATED:
        raise OSError(f"{source} inflates to more than {MAX_INFLATED} bytes")
    return written
