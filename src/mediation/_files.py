"""Writing a file the user named, whole or not at all, readable by its owner only.

An export, a case report or the signer's state can hold personal data (decrypted, for an export
or a report), so no partial copy of one may stay on disk, whatever happens to the process:
:func:`atomic_write` (bytes) and :func:`atomic_write_text` (text) write the data

* on Linux, into an **unnamed** file (``O_TMPFILE``) in the target's directory: until the data is
  complete and fsynced it has no name, so an exception, a ``kill -9`` or a power cut leaves nothing
  behind (the kernel frees the inode).  Complete, it is linked into place (``/proc/self/fd``): at
  the target's name directly when nothing is there yet, otherwise at a random hidden name beside it
  renamed over the target at once (the only moment the data has a second name is between those two
  calls, and it is complete then);
* elsewhere (another OS, a filesystem without ``O_TMPFILE``, no ``/proc``), into a hidden named
  temporary file beside the target, created 0600 by :func:`tempfile.mkstemp`, fsynced and renamed
  over the target; removed on any exception, ``KeyboardInterrupt`` and ``SystemExit`` included.
  Only a ``kill -9`` (or a crash of the machine) can leave it, never readable by others.

The final file has mode ``mode`` (0600 by default: owner read/write, whatever the umask), and the
directory is fsynced after the rename.  On any failure a file already at ``path`` is left as it was.

While a write is under way in the main thread, SIGTERM (when its disposition is the default, which
kills the process without any cleanup) raises :class:`SystemExit` (status 143) instead, so that the
named temporary file of the fallback is removed; the previous disposition is restored afterwards.
A SIGTERM or Ctrl-C arriving while the file is being put into place or a temporary file removed
waits until that is done.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, BinaryIO, TextIO, TypeAlias

__all__ = ["atomic_write", "atomic_write_text"]

#: where a descriptor can be named again, to link an ``O_TMPFILE`` file into the tree
_PROC_FD = "/proc/self/fd"
#: ``open(dir, O_TMPFILE)`` fails so where the kernel or the filesystem lacks it
_NO_TMPFILE = frozenset({errno.EOPNOTSUPP, errno.ENOTSUP, errno.EISDIR, errno.EINVAL})
#: the exit status of a process that SIGTERM ended (128 + 15)
_TERM_STATUS = 128 + int(signal.SIGTERM)
#: what :func:`signal.signal` takes and :func:`signal.getsignal` returns
_Handler: TypeAlias = "Callable[[int, FrameType | None], Any] | int | signal.Handlers | None"


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: int = 0o600) -> Iterator[BinaryIO]:
    """A binary file object whose contents replace ``path`` when the block ends normally, and
    vanish without a trace when it raises; the file ends with permissions ``mode`` (0600)."""
    with _atomic(path, mode) as fd, open(fd, "wb", closefd=False) as f:
        yield f


@contextlib.contextmanager
def atomic_write_text(
    path: str | os.PathLike[str],
    mode: int = 0o600,
    *,
    encoding: str = "utf-8",
    newline: str | None = "\n",
) -> Iterator[TextIO]:
    """:func:`atomic_write` for text (UTF-8 and ``\\n`` line ends by default)."""
    with (
        _atomic(path, mode) as fd,
        open(fd, "w", encoding=encoding, newline=newline, closefd=False) as f,
    ):
        yield f


# -- the two ways -----------------------------------------------------------------------------------


@contextlib.contextmanager
def _atomic(path: str | os.PathLike[str], mode: int) -> Iterator[int]:
    """A descriptor to write the data to (the caller flushes it before the block ends); the
    data replaces ``path`` when the block ends normally."""
    target = os.path.abspath(path)
    directory = os.path.dirname(target)
    with _signals_as_exceptions() as guard:
        fd = _unnamed(directory)
        if fd is not None:
            try:
                yield fd
                os.fchmod(fd, mode)
                os.fsync(fd)
                with guard.held():
                    _link_into_place(fd, target, directory)
            finally:
                os.close(fd)
        else:
            tmp: str | None = None
            try:
                with guard.held():  # a signal between creating and naming it would lose the name
                    fd, tmp = tempfile.mkstemp(
                        prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=directory
                    )
                try:
                    yield fd
                    os.fchmod(fd, mode)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                with guard.held():
                    os.replace(tmp, target)
                    tmp = None
            except BaseException:
                if tmp is not None:
                    with guard.held(), contextlib.suppress(OSError):
                        os.unlink(tmp)
                raise
        _sync_directory(directory)


def _unnamed(directory: str) -> int | None:
    """An unnamed file in ``directory`` open for writing, or None where there is no such thing
    (or no ``/proc`` to name it by later)."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not os.path.isdir(_PROC_FD):
        return None
    try:
        return os.open(directory, flag | os.O_WRONLY | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno in _NO_TMPFILE:
            return None
        raise


def _link_into_place(fd: int, target: str, directory: str) -> None:
    """Give the unnamed file of ``fd`` the name ``target``, replacing whatever is there."""
    # linkat(AT_SYMLINK_FOLLOW): os.link only passes the flag along when given a directory fd
    source = f"{_PROC_FD}/{fd}"
    name = os.path.basename(target)
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with contextlib.suppress(FileExistsError):
            os.link(source, name, dst_dir_fd=dir_fd, follow_symlinks=True)
            return
        while True:
            tmp = f".{name}.{secrets.token_hex(8)}.tmp"
            try:
                os.link(source, tmp, dst_dir_fd=dir_fd, follow_symlinks=True)
                break
            except FileExistsError:  # pragma: no cover - 64 random bits
                continue
        try:
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise
    finally:
        os.close(dir_fd)


def _sync_directory(directory: str) -> None:
    """Make the new name durable (best effort: not every OS can open a directory)."""
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# -- signals ----------------------------------------------------------------------------------------


class _Guard:
    """Holds SIGTERM and SIGINT back during the steps that must not be cut short (naming, renaming
    and removing a file), when :func:`_signals_as_exceptions` installed its handlers."""

    def __init__(self) -> None:
        self.depth = 0
        self.pending: list[int] = []

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if self.depth == 0 and self.pending:
            signum = self.pending[0]
            self.pending.clear()
            _raise_for(signum)


def _raise_for(signum: int) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(_TERM_STATUS)


@contextlib.contextmanager
def _signals_as_exceptions() -> Iterator[_Guard]:
    """While the block runs in the main thread: SIGTERM, when it would kill the process outright
    (its default disposition), raises SystemExit(143), and SIGINT, when Python's default handler
    has it, raises KeyboardInterrupt; both wait while the guard is held.  Other dispositions (a
    program's own handlers, an ignored signal) are left alone.  Restored when the block ends."""
    guard = _Guard()
    if threading.current_thread() is not threading.main_thread():
        yield guard
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        if guard.depth:
            guard.pending.append(signum)
            return
        _raise_for(signum)

    installed: dict[int, _Handler] = {}
    try:
        for signum, default in (
            (signal.SIGTERM, signal.SIG_DFL),
            (signal.SIGINT, signal.default_int_handler),
        ):
            previous = signal.getsignal(signum)
            if previous is default:
                signal.signal(signum, handle)
                installed[signum] = previous
    except ValueError:  # not the main interpreter: signals are not ours to handle
        pass
    try:
        yield guard
    finally:
        for sig, old in installed.items():
            signal.signal(sig, old)
