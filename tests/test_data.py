"""The Fashion-MNIST loader: IDX parsing, the search order, and a clear error when missing."""

from __future__ import annotations

import gzip
import os
import struct

import pytest
import torch

from grader import data


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
    loaded = data.load_fashion_mnist.__wrapped__(tmp_path)
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
    unpacked = data.unpacked_dir(tmp_path / "gz", tmp_path / "cache")
    assert unpacked.parent == tmp_path / "cache"
    assert sorted(p.name for p in unpacked.iterdir()) == sorted(data.FILES.values())
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in unpacked.iterdir())
    loaded = data.load_fashion_mnist.__wrapped__(unpacked)
    for key, tensor in written.items():
        assert torch.equal(getattr(loaded, key), tensor)
    first = {p.name: p.stat().st_mtime_ns for p in unpacked.iterdir()}
    assert data.unpacked_dir(tmp_path / "gz", tmp_path / "cache") == unpacked
    assert {p.name: p.stat().st_mtime_ns for p in unpacked.iterdir()} == first


def test_raw_files_are_used_where_they_are(tmp_path):
    fake_dataset(tmp_path / "raw", compress=False)
    assert data.unpacked_dir(tmp_path / "raw", tmp_path / "cache") == tmp_path / "raw"
    assert not (tmp_path / "cache").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="making a folder another user owns needs root")
def test_a_cache_folder_owned_by_another_user_is_not_used(tmp_path):
    fake_dataset(tmp_path / "gz", compress=True)
    (tmp_path / "cache").mkdir()
    os.chown(tmp_path / "cache", 12345, 12345)
    with pytest.raises(PermissionError, match="another user"):
        data.unpacked_dir(tmp_path / "gz", tmp_path / "cache")
