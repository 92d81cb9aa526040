"""Durable folders: fsync before a rename, a manifest to verify, and a one-step swap.

A rename is atomic against a killed process, but after a power loss the rename may reach
the disk before the file contents do: a folder that looks complete can hold truncated
files. So every file and folder is fsynced before it is renamed into place, and a
manifest (size and SHA-256 of each file) lets a reader tell a complete folder from one
that only looks complete.

Replacing a model folder with ``rmtree`` then ``rename`` leaves no model if the process
dies in between. :func:`swap_into_place` exchanges the new folder with the old one in one
step (Linux ``renameat2(RENAME_EXCHANGE)``) and removes the old one afterwards. Python's
``os`` has no binding for it and no library we use provides one, hence the small ``ctypes``
call; elsewhere the old folder is moved aside first, so the short window between the two
renames still holds the complete old model as ``<name>.old``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import shutil
import sys
from pathlib import Path

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_OLD_SUFFIX = ".old"


def fsync_path(path: str | Path) -> None:
    """Flush one file's or folder's contents (a folder: its entries) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: str | Path) -> None:
    """fsync every file under ``root``, then every folder bottom-up, then ``root`` itself."""
    root = Path(root)
    for folder, dirs, files in os.walk(root, topdown=False):
        for name in files:
            fsync_path(Path(folder) / name)
        for name in dirs:
            fsync_path(Path(folder) / name)
    fsync_path(root)


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def manifest(root: str | Path, skip: tuple[str, ...] = ()) -> dict[str, dict[str, int | str]]:
    """``{relative path: {"size": bytes, "sha256": hex}}`` of every file under ``root``."""
    root = Path(root)
    out: dict[str, dict[str, int | str]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel in skip:
            continue
        out[rel] = {"size": path.stat().st_size, "sha256": file_sha256(path)}
    return out


def verify_manifest(root: str | Path, files: dict[str, dict[str, int | str]]) -> str | None:
    """None if every listed file is there with its size and hash, else the first problem."""
    root = Path(root)
    for rel, want in sorted(files.items()):
        path = root / rel
        if not path.is_file():
            return f"{rel} is missing"
        size = path.stat().st_size
        if size != want["size"]:
            return f"{rel} has {size} bytes, {want['size']} were written"
        if file_sha256(path) != want["sha256"]:
            return f"{rel} does not match the hash written with it"
    return None


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # no libc or a libc older than glibc 2.28
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    ok = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0
    return ok  # EINVAL/ENOSYS (file system or kernel without it): fall back


def swap_into_place(new: str | Path, dest: str | Path) -> Path:
    """Make the complete folder ``new`` become ``dest``; at no moment is ``dest`` missing
    (or, without an atomic exchange, ``dest.old`` holds the complete old one).

    ``new`` is fsynced first and the parent folder after, so the swap survives a power loss.
    """
    new, dest = Path(new), Path(dest)
    fsync_tree(new)
    if not dest.exists():
        os.replace(new, dest)
    elif _exchange(new, dest):
        shutil.rmtree(new, ignore_errors=True)  # ``new`` now names the old folder
    else:
        old = dest.with_name(dest.name + _OLD_SUFFIX)
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
        os.replace(new, dest)
        shutil.rmtree(old, ignore_errors=True)
    fsync_path(dest.parent)
    return dest
