"""Tests for journal.durable: private files and directories, never through a link."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from schemalog.journal.durable import (
    create_private_file,
    make_private_dir,
    open_append,
    open_private_file,
    open_rw_nofollow,
    read_nofollow,
    replace_private_file,
    write_private_file,
)
from schemalog.journal.errors import PlantedSymlink


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Run the test with umask 000 (the process default is restored afterwards)."""
    old = os.umask(0)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


CREATORS: dict[str, Callable[[Path], object]] = {
    "create_private_file": create_private_file,
    "open_private_file": lambda p: open_private_file(p).close(),
    "write_private_file": lambda p: write_private_file(p, b"data"),
    "open_append": lambda p: os.close(open_append(p)[0]),
    "open_rw_nofollow": lambda p: os.close(open_rw_nofollow(p)[0]),
    "replace_private_file": lambda p: replace_private_file(p, b"data"),
}


class TestPrivate:
    @pytest.mark.parametrize("name", CREATORS, ids=list(CREATORS))
    def test_new_files_are_0600_whatever_the_umask(self, tmp_path, open_umask, name):
        """Every helper that creates a file creates it 0600, even with umask 000."""
        path = tmp_path / "f"
        CREATORS[name](path)
        assert mode(path) == 0o600

    def test_new_directories_are_0700_with_their_parents(self, tmp_path, open_umask):
        """make_private_dir creates the directory and its missing parents 0700."""
        make_private_dir(tmp_path / "a" / "b")
        assert mode(tmp_path / "a") == mode(tmp_path / "a" / "b") == 0o700


class TestNoFollow:
    @pytest.mark.parametrize("dangling", [True, False], ids=["dangling", "to-a-file"])
    @pytest.mark.parametrize("name", CREATORS, ids=list(CREATORS))
    def test_a_link_is_refused_and_its_target_untouched(self, tmp_path, name, dangling):
        """A link at the path: PlantedSymlink (exit 2); the target neither created nor changed."""
        target = tmp_path / "target"
        if not dangling:
            target.write_bytes(b"victim")
        link = tmp_path / "link"
        link.symlink_to(target)
        with pytest.raises(PlantedSymlink, match="is a symbolic link") as info:
            CREATORS[name](link)
        assert info.value.exit_code == 2
        assert (not target.exists()) if dangling else target.read_bytes() == b"victim"
        assert link.is_symlink()

    def test_read_nofollow_refuses_a_link(self, tmp_path):
        """Reading through a link is refused too."""
        (tmp_path / "t").write_bytes(b"x")
        (tmp_path / "l").symlink_to(tmp_path / "t")
        with pytest.raises(PlantedSymlink):
            read_nofollow(tmp_path / "l")
        assert read_nofollow(tmp_path / "t") == b"x"

    def test_a_link_at_the_temporary_path_of_a_replacement_is_refused(self, tmp_path):
        """replace_private_file refuses a link planted at its temporary path; the file stays."""
        path = tmp_path / "j"
        path.write_bytes(b"old")
        (tmp_path / "j.replace-tmp").symlink_to(tmp_path / "victim")
        with pytest.raises(PlantedSymlink):
            replace_private_file(path, b"new")
        assert path.read_bytes() == b"old" and not (tmp_path / "victim").exists()

    def test_a_link_where_a_directory_goes_is_refused(self, tmp_path):
        """make_private_dir refuses a link, even to a directory."""
        (tmp_path / "d").mkdir()
        (tmp_path / "l").symlink_to(tmp_path / "d")
        with pytest.raises(PlantedSymlink):
            make_private_dir(tmp_path / "l")


class TestReplace:
    def test_replacement_is_whole_and_leaves_no_temporary_file(self, tmp_path):
        """The file holds the new bytes, 0600; a leftover temporary file is replaced."""
        path = tmp_path / "j"
        path.write_bytes(b"old")
        path.chmod(0o644)
        (tmp_path / "j.replace-tmp").write_bytes(b"leftover of a crash")
        replace_private_file(path, b"new")
        assert path.read_bytes() == b"new" and mode(path) == 0o600
        assert not (tmp_path / "j.replace-tmp").exists()

    def test_a_failed_write_removes_the_partial_file(self, tmp_path, monkeypatch):
        """write_private_file that fails (disk full) leaves no partial file behind."""

        def full(fd, data):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "write", full)
        with pytest.raises(OSError):
            write_private_file(tmp_path / "n", b"data")
        assert not (tmp_path / "n").exists()
