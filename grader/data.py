"""Fashion-MNIST from its IDX files, parsed once into uint8 tensors.

Decoding image by image through torchvision's PIL path costs seconds per epoch; the
whole dataset is 55 MB of bytes, so it is parsed once, cached, and batches are sliced.
"""

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

import torch

from grader.cache import (
    create_file,
    default_root,
    fingerprint,
    load_verified,
    open_owned,
    owned_folder,
    store_verified,
    write_atomically,
)

ENV_VAR = "FASHION_MNIST_DIR"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
TORCHVISION_ROOTS = (Path("data"), Path("../data"), Path.home() / ".torchvision")
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
LABELS = (
    "t-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
)
IDX_DTYPES = {0x08: torch.uint8}
MANIFEST = "manifest"
MANIFEST_MAX_BYTES = 4096
CHUNK = 1 << 20
MAX_INFLATED = 1 << 28  # Fashion-MNIST's largest file is 47 MB
# File times advance by clock ticks (a second on some filesystems): a file changed within a
# tick of its check may keep its times, so only a check begun this long after the file's
# last change may vouch for it by its times alone.
RACY_NS = 1_000_000_000


class DataNotFound(FileNotFoundError):
    """Raised with every place searched, so the fix is obvious."""


@dataclass(frozen=True)
class FashionMNIST:
    """Both splits as uint8 images (n, 28, 28) and int64 labels (n,)."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


def candidate_dirs() -> list[Path]:
    """Where to look, in order: the env var, torchvision's layouts, then Debian's package."""
    dirs = []
    if os.environ.get(ENV_VAR):
        dirs.append(Path(os.environ[ENV_VAR]))
    for root in TORCHVISION_ROOTS:
        dirs.append(root / "FashionMNIST" / "raw")
    dirs.append(DEBIAN_DIR)
    return dirs


def find_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, f"{stem}.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def find_data_dir() -> Path:
    """The first folder holding all four files, raw or gzipped."""
    searched = candidate_dirs()
    for folder in searched:
        if all(find_file(folder, stem) for stem in FILES.values()):
            return folder
    places = "\n  ".join(str(p) for p in searched)
    raise DataNotFound(
        f"Fashion-MNIST not found. Searched:\n  {places}\n"
        f"Set {ENV_VAR} to a folder with the four IDX files, or install the Debian "
        "package dataset-fashion-mnist."
    )


def read_idx(path: Path) -> torch.Tensor:
    """Parse one IDX file (optionally gzipped) into a tensor."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = 1
    for size in shape:
        expected *= size
    if len(raw) - header != expected:
        raise ValueError(f"{path}: header says {shape}, file holds {len(raw) - header} bytes")
    data = torch.frombuffer(bytearray(raw[header:]), dtype=torch.uint8)
    return data.reshape(shape)


def data_stamp(sources: list[Path]) -> str:
    """The files' paths, sizes and times: a new stamp when the data changes."""
    return "".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns};" for p in sources)


def data_files(folder: Path) -> list[Path]:
    """The four IDX files in `folder`, raw or gzipped; DataNotFound if one is missing."""
    sources = [find_file(folder, stem) for stem in FILES.values()]
    if None in sources:
        raise DataNotFound(f"{folder} lacks some of {', '.join(FILES.values())}")
    return sources


@dataclass(frozen=True)
class Entry:
    """What a cached file must hold: its size and sha256, as written."""

    size: int
    sha256: str


Stamp = tuple[int, int, int, int]
_VERIFIED: dict[Path, tuple[Entry, Stamp]] = {}  # path -> entry and stamp at its last full check


def unpacked_dir(folder: Path, cache_root: Path | None = None) -> Path:
    """`folder` with its gzipped files inflated into the cache, so that every kernel reads
    raw bytes instead of inflating 30 MB again; `folder` when none is gzipped.

    The copy is named after the sources' data_stamp and readable by every uid (kernels run
    under their own). It is checked against its manifest on every use, and a file that is
    damaged, missing, a link or not a regular file of ours is inflated again: one bad copy
    would otherwise cost every later student the marks of the exercises that read it."""
    sources = data_files(folder)
    if all(path.suffix != ".gz" for path in sources):
        return folder
    root = owned_folder(cache_root or default_root(), 0o755)
    target = owned_folder(root / f"fashion-mnist-{fingerprint(data_stamp(sources))}", 0o755)
    recorded = read_manifest(target)
    entries = {stem: ensure_inflated(target / stem, source, recorded.get(stem))
               for stem, source in zip(FILES.values(), sources, strict=True)}
    if entries != recorded:  # written last: a manifest vouches only for finished files
        store_verified(target / MANIFEST, json.dumps(
            {stem: asdict(entry) for stem, entry in entries.items()}).encode())
    return target


def read_manifest(target: Path) -> dict[str, Entry]:
    """The entries recorded for the files in `target`; {} when the manifest is missing or
    not as written, so that every file is inflated again."""
    raw = load_verified(target / MANIFEST, MANIFEST_MAX_BYTES)
    if raw is None:
        return {}
    try:
        recorded = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(recorded, dict) or set(recorded) != set(FILES.values()):
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


@cache
def load_fashion_mnist(folder: Path | None = None) -> FashionMNIST:
    """Both splits, parsed once per process."""
    folder = folder or find_data_dir()
    tensors = {}
    for key, stem in FILES.items():
        path = find_file(folder, stem)
        if path is None:
            raise DataNotFound(f"{folder} lacks {stem}(.gz)")
        tensors[key] = read_idx(path)
    for split in ("train", "test"):
        tensors[f"{split}_labels"] = tensors[f"{split}_labels"].long()
    return FashionMNIST(**tensors)


def as_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to float32 in [0, 1], shaped (n, 1, 28, 28) as ToTensor gives them."""
    return images.to(torch.float32).div_(255).unsqueeze(1)


def batches(
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
):
    """Yield (X, y) slices of tensors already in memory; X is float in [0, 1]."""
    n = len(labels)
    order = torch.randperm(n, generator=generator) if shuffle else None
    for start in range(0, n, batch_size):
        if order is None:
            index = slice(start, start + batch_size)
        else:
            index = order[start : start + batch_size]
        yield as_float(images[index]), labels[index]
