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
