"""Files of a checkpoint on a local disk: their sizes, what a save added, the page cache."""

from __future__ import annotations

import os


def file_sizes(directory: str) -> dict[str, int]:
    """Name -> size of every regular file directly in `directory`."""
    sizes = {}
    for entry in os.scandir(directory):
        if entry.is_file(follow_symlinks=False):
            sizes[entry.name] = entry.stat().st_size
    return sizes


def new_files(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The files of `after` whose names `before` does not have (what a save added)."""
    return {name: size for name, size in after.items() if name not in before}


def checkpoint_files(prefix: str, referenced: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Paths of the index and own shards of `prefix`, then of the `referenced` shard basenames."""
    directory, base = os.path.split(prefix)
    own = sorted(name for name in os.listdir(directory)
                 if name == base + ".index" or name.startswith(base + ".data-"))
    return [os.path.join(directory, name) for name in own + sorted(referenced)]


def evict_from_page_cache(paths: list[str]) -> int:
    """Asks the kernel to drop the cached pages of `paths` (clean pages only); returns bytes.

    `posix_fadvise(POSIX_FADV_DONTNEED)` needs no privileges; pages still dirty
    are not dropped, so the files are fsync'd first. A restore after this reads
    the disk instead of the page cache.
    """
    total = 0
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            total += os.fstat(fd).st_size
        finally:
            os.close(fd)
    return total


def cached_fraction(path: str) -> float | None:
    """Fraction of `path`'s pages in the page cache (mincore), or None where it cannot tell."""
    import ctypes
    import mmap

    size = os.path.getsize(path)
    if size == 0:
        return 1.0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                              ctypes.c_int, ctypes.c_long]
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    except (OSError, AttributeError):
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if address in (None, ctypes.c_void_p(-1).value):
            return None
        try:
            pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
            vec = (ctypes.c_ubyte * pages)()
            if libc.mincore(address, size, vec) != 0:
                return None
            return sum(v & 1 for v in vec) / pages
        finally:
            libc.munmap(address, size)
    finally:
        os.close(fd)
