"""The Fashion-MNIST loader: IDX parsing, the search order, a clear error when missing, and
a cache of the inflated files that is checked on every use: a damaged copy is made again,
never handed to the kernels."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import stat
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from grader.authoring.datasets import FASHION_MNIST
from grader.grading import cache
from grader.kernel import data
from grader.sandbox import bwrap, datacache


def write_idx(path, tensor: torch.Tensor, compress: bool) -> None:
    header = bytes([0, 0, 0x08, tensor.dim()]) + b"".join(
        struct.pack(">I", size) for size in tensor.shape)
    raw = header + bytes(tensor.flatten().tolist())
    path.write_bytes(gzip.compress(raw) if compress else raw)


def fake_dataset(folder, n_train=5, n_test=3, compress=True) -> dict[str, torch.Tensor]:
    folder.mkdir(parents=True, exist_ok=True)
    made = {
        "train_images": torch.randint(0, 256, (n_train, 28, 28), dtype=torch.uint8),
        "train_labels": torch.randint(0, 10, (n_train,), dtype=torch.uint8),
        "test_images": torch.randint(0, 256, (n_test, 28, 28), dtype=torch.uint8),
        "test_labels": torch.randint(0, 10, (n_test,), dtype=torch.uint8),
    }
    for key, tensor in made.items():
        name = data.FILES[key] + (".gz" if compress else "")
        write_idx(folder / name, tensor, compress)
    return made


@pytest.mark.parametrize("compress", [True, False])
def test_idx_files_parse_into_the_tensors_written(tmp_path, compress):
    made = fake_dataset(tmp_path, compress=compress)
    loaded = data.parsed.__wrapped__(tmp_path)
    assert torch.equal(loaded.train_images, made["train_images"])
    assert torch.equal(loaded.test_labels, made["test_labels"].long())
    assert loaded.train_labels.dtype == torch.int64


def test_a_truncated_idx_file_is_refused(tmp_path):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x01\x02")
    with pytest.raises(ValueError, match="header says"):
        data.read_idx(path)


def test_the_env_var_is_searched_first(tmp_path, monkeypatch):
    fake_dataset(tmp_path / "mine")
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "mine"))
    assert data.find_data_dir() == tmp_path / "mine"


def test_the_torchvision_layout_is_found(tmp_path, monkeypatch):
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    fake_dataset(tmp_path / "data" / "FashionMNIST" / "raw", compress=False)
    assert data.find_data_dir().resolve() == (tmp_path / "data/FashionMNIST/raw").resolve()


def test_missing_data_names_every_place_searched(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "nowhere"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(data, "TORCHVISION_ROOTS", (tmp_path / "data",))
    with pytest.raises(data.DataNotFound) as caught:
        data.find_data_dir()
    message = str(caught.value)
    assert str(tmp_path / "nowhere") in message
    assert str(tmp_path / "no-debian") in message
    assert data.ENV_VAR in message


def test_batches_slice_every_example_once_as_floats():
    images = torch.arange(10 * 4, dtype=torch.uint8).reshape(10, 2, 2)
    labels = torch.arange(10)
    generator = torch.Generator().manual_seed(1)
    seen = []
    for X, y in data.batches(images, labels, 4, shuffle=True, generator=generator):
        assert X.dtype == torch.float32 and X.shape[1:] == (1, 2, 2)
        assert torch.equal(X, images[y].float().div(255).unsqueeze(1))
        seen += y.tolist()
    assert sorted(seen) == list(range(10)) and seen != list(range(10))


def test_the_real_dataset_has_the_published_sizes():
    real = data.load_fashion_mnist()
    assert real.train_images.shape == (60_000, 28, 28)
    assert real.test_images.shape == (10_000, 28, 28)
    assert sorted(real.train_labels.unique().tolist()) == list(range(10))


def test_gzipped_files_are_inflated_once_into_a_shared_cache(tmp_path):
    written = fake_dataset(tmp_path / "gz", compress=True)
    unpacked = datacache.unpacked_dir(FASHION_MNIST, tmp_path / "gz", tmp_path / "cache")
    assert unpacked.parent == tmp_path / "cache"
    assert sorted(p.name for p in unpacked.iterdir()) == sorted([*data.FILES.values(),
                                                                 datacache.MANIFEST])
    assert all((unpacked / stem).stat().st_mode & 0o777 == 0o644 for stem in data.FILES.values())
    assert (unpacked / datacache.MANIFEST).stat().st_mode & 0o777 == 0o600  # the grader's alone
    assert_holds(unpacked, written)
    first = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in unpacked.iterdir()}
    assert datacache.unpacked_dir(FASHION_MNIST, tmp_path / "gz", tmp_path / "cache") == unpacked
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in unpacked.iterdir()} == first


def read_paths(monkeypatch) -> list[Path]:
    """The files data.read_idx reads from now on, in this process, parsed afresh."""
    paths: list[Path] = []
    read_idx = data.read_idx
    monkeypatch.setattr(data, "read_idx", lambda path: paths.append(path) or read_idx(path))
    monkeypatch.setattr(data, "_COPIES", {})
    data.parsed.cache_clear()
    return paths


def test_a_process_told_of_an_inflated_copy_reads_the_copy(tmp_path, monkeypatch):
    written = fake_dataset(tmp_path / "gz", compress=True)
    copy = datacache.unpacked_dir(FASHION_MNIST, tmp_path / "gz", tmp_path / "cache")
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "gz"))
    paths = read_paths(monkeypatch)
    data.read_copy(tmp_path / "gz", copy)
    loaded = data.load_fashion_mnist()
    assert {path.parent for path in paths} == {copy}, paths  # raw, not inflated again
    assert torch.equal(loaded.train_images, written["train_images"])


def test_the_graders_own_probes_read_the_copy_its_kernels_read(monkeypatch):
    """The reference's probes and the checks parse the raw copy bound into the kernels,
    not the gzip files it was inflated from (0.3 s of each grading process's start)."""
    source = FASHION_MNIST.find().resolve()
    paths = read_paths(monkeypatch)
    bwrap.read_copies_here()
    data.load_fashion_mnist()
    [copy] = {path.parent for path in paths}
    assert copy == bwrap.data_folders()[data.ENV_VAR]
    assert copy != source or not any(path.suffix == ".gz" for path in source.iterdir())
    assert not any(path.suffix == ".gz" for path in paths), paths


def test_raw_files_are_used_where_they_are(tmp_path):
    fake_dataset(tmp_path / "raw", compress=False)
    unpacked = datacache.unpacked_dir(FASHION_MNIST, tmp_path / "raw", tmp_path / "cache")
    assert unpacked == tmp_path / "raw"
    assert not (tmp_path / "cache").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="making a folder another user owns needs root")
def test_a_cache_folder_owned_by_another_user_is_not_used(tmp_path):
    fake_dataset(tmp_path / "gz", compress=True)
    (tmp_path / "cache").mkdir()
    os.chown(tmp_path / "cache", 12345, 12345)
    with pytest.raises(PermissionError, match="another user"):
        datacache.unpacked_dir(FASHION_MNIST, tmp_path / "gz", tmp_path / "cache")


DAMAGED = "train-images-idx3-ubyte"


def assert_holds(unpacked: Path, written: dict[str, torch.Tensor]) -> None:
    """Every cached file is a regular file of ours that only we may write, and they parse
    into what was written."""
    for stem in data.FILES.values():
        status = (unpacked / stem).lstat()
        assert stat.S_ISREG(status.st_mode) and status.st_uid == os.geteuid()
        assert stat.S_IMODE(status.st_mode) == 0o644
    loaded = data.parsed.__wrapped__(unpacked)
    for key, tensor in written.items():
        assert torch.equal(getattr(loaded, key), tensor.long() if "labels" in key else tensor)


def flipped(path: Path) -> bytes:
    return bytes(b ^ 0xFF for b in path.read_bytes())


def overwrite(path: Path, content: bytes) -> None:
    """Write `content` over the file in place: the same inode, and here the same size."""
    with open(path, "r+b") as handle:
        handle.write(content)


def other_bytes(path: Path) -> None:
    """The same size and inode, every byte flipped: only the contents tell."""
    overwrite(path, flipped(path))


def link_to_a_good_copy(path: Path) -> None:
    shutil.copyfile(path, path.with_name("elsewhere"))
    path.unlink()
    path.symlink_to(path.with_name("elsewhere"))


def fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def another_users(path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    os.chown(path, 12345, 12345)


DAMAGES: dict[str, Callable[[Path], None]] = {
    "other bytes of the same size": other_bytes,
    "truncated": lambda path: os.truncate(path, path.stat().st_size // 2),
    "missing": Path.unlink,
    "a link, even to the right bytes": link_to_a_good_copy,
    "a FIFO": fifo,
    "writable by others": lambda path: path.chmod(0o666),
    "another user's": another_users,
}


@pytest.fixture
def cached(tmp_path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A gzipped dataset's copy in a test cache, and the tensors written to the dataset."""
    written = fake_dataset(tmp_path / "gz", compress=True)
    return datacache.unpacked_dir(FASHION_MNIST, tmp_path / "gz", tmp_path / "cache"), written


def unpack_again(unpacked: Path) -> Path:
    root = unpacked.parent.parent
    return datacache.unpacked_dir(FASHION_MNIST, root / "gz", root / "cache")


@pytest.mark.timeout(20)  # a FIFO opened for reading blocks until a writer comes: never
@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_cached_file_is_inflated_again_before_it_is_used(cached, damage):
    unpacked, written = cached
    untouched = (unpacked / "train-labels-idx1-ubyte").stat().st_ino
    DAMAGES[damage](unpacked / DAMAGED)
    assert unpack_again(unpacked) == unpacked
    assert_holds(unpacked, written)
    assert (unpacked / "train-labels-idx1-ubyte").stat().st_ino == untouched  # only the bad one
    assert unpack_again(unpacked) == unpacked


def test_a_file_checked_by_its_stamp_is_read_in_full_again_once_it_changes(cached,
                                                                             monkeypatch):
    unpacked, written = cached
    monkeypatch.setattr(datacache, "RACY_NS", 0)  # vouch for the file just written
    digested = []

    def counting(handle, limit, copy=None):
        digested.append(copy is None)
        return digest_of(handle, limit, copy)

    digest_of = datacache.digest_of
    monkeypatch.setattr(datacache, "digest_of", counting)
    unpack_again(unpacked)
    assert digested == [True] * 4  # the first check in this process reads every file
    digested.clear()
    unpack_again(unpacked)
    assert digested == []  # then the stamps vouch for them
    remembered, wrong = (unpacked / DAMAGED).stat().st_ctime_ns, flipped(unpacked / DAMAGED)
    while (unpacked / DAMAGED).stat().st_ctime_ns == remembered:  # past the clock's tick
        time.sleep(0.01)
        overwrite(unpacked / DAMAGED, wrong)
    unpack_again(unpacked)
    assert digested == [True, False]  # read, found changed, inflated again
    assert_holds(unpacked, written)


def test_a_file_changed_close_to_its_check_is_not_vouched_for_by_its_stamp(cached,
                                                                           monkeypatch):
    unpacked, _ = cached
    digested = []
    digest_of = datacache.digest_of
    monkeypatch.setattr(datacache, "digest_of",
                        lambda *args: digested.append(1) or digest_of(*args))
    unpack_again(unpacked)
    unpack_again(unpacked)
    assert len(digested) == 8  # inflated under RACY_NS ago: its times could yet stay the same


def store_manifest(unpacked: Path, entries: object) -> None:
    cache.store_verified(unpacked / datacache.MANIFEST, json.dumps(entries).encode())


def recorded(unpacked: Path) -> dict:
    return json.loads(cache.load_verified(unpacked / datacache.MANIFEST,
                                          datacache.MANIFEST_MAX_BYTES))


MANIFEST_DAMAGES: dict[str, Callable[[Path], None]] = {
    "garbage": lambda unpacked: (unpacked / datacache.MANIFEST).write_bytes(b"garbage"),
    "missing": lambda unpacked: (unpacked / datacache.MANIFEST).unlink(),
    "not the entries": lambda unpacked: store_manifest(unpacked, ["size", "sha256"]),
    "a wrong digest": lambda unpacked: store_manifest(unpacked, {
        **recorded(unpacked), DAMAGED: {**recorded(unpacked)[DAMAGED], "sha256": "0" * 64}}),
    "a file left out": lambda unpacked: store_manifest(unpacked, {
        k: v for k, v in recorded(unpacked).items() if k != DAMAGED}),
}


@pytest.mark.parametrize("damage", MANIFEST_DAMAGES)
def test_a_damaged_manifest_has_the_files_inflated_again_and_is_written_anew(cached, damage):
    unpacked, written = cached
    good = recorded(unpacked)
    before = (unpacked / DAMAGED).stat().st_ino
    MANIFEST_DAMAGES[damage](unpacked)
    unpack_again(unpacked)
    assert (unpacked / DAMAGED).stat().st_ino != before  # not vouched for: made again
    assert recorded(unpacked) == good
    assert_holds(unpacked, written)


@pytest.mark.parametrize("damage", ["a link", "a file"])
def test_a_cache_folder_that_is_not_a_folder_of_ours_is_refused(tmp_path, damage):
    fake_dataset(tmp_path / "gz", compress=True)
    (tmp_path / "elsewhere").mkdir()
    if damage == "a link":
        (tmp_path / "cache").symlink_to(tmp_path / "elsewhere")
    else:
        (tmp_path / "cache").write_bytes(b"")
    with pytest.raises(OSError):
        datacache.unpacked_dir(FASHION_MNIST, tmp_path / "gz", tmp_path / "cache")
    assert not list((tmp_path / "elsewhere").iterdir())


def test_the_epochs_pixels_are_the_images_as_floats_with_the_blanked_ones_zero():
    blank = torch.tensor(data.BLANKED)
    rows = data.blanked_pixels(blank)
    images = data.load_fashion_mnist().train_images
    assert rows.shape == (len(images), 28 * 28) and rows.dtype == torch.float32
    assert rows[:, blank].abs().sum() == 0
    assert images.reshape(len(images), -1)[:, blank].sum() > 0  # blanked, not blank already
    kept = torch.ones(28 * 28, dtype=torch.bool)
    kept[blank] = False
    assert torch.equal(rows[:, kept], data.as_float(images).reshape(len(images), -1)[:, kept])
    assert data.blanked_pixels(blank.clone()) is rows  # made once for the pixel set
    assert data.blanked_pixels(blank[:3]) is not rows
