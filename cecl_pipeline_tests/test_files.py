import pytest

from cecl_pipeline.files import TEMP_MARK, atomic_path, sha256_file, write_bytes_atomic


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "out" / "file.bin"
    write_bytes_atomic(target, b"first")
    write_bytes_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]


def test_failure_mid_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "file.bin"
    write_bytes_atomic(target, b"good")
    before = sha256_file(target)
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half-writ")
            raise RuntimeError("disk full")
    assert sha256_file(target) == before
    assert not any(TEMP_MARK in p.name for p in tmp_path.iterdir())


def test_atomic_dir_replaces_a_directory_whole_or_not_at_all(tmp_path):
    from cecl_pipeline.files import atomic_dir

    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "a.bin").write_bytes(b"v1")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "a.bin").write_bytes(b"v2-partial")
            raise RuntimeError("killed mid-write")
    assert (target / "a.bin").read_bytes() == b"v1"
    with atomic_dir(target) as tmp:
        (tmp / "b.bin").write_bytes(b"v2")
    assert sorted(p.name for p in target.iterdir()) == ["b.bin"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
