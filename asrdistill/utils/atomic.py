"""Atomic file output: write to a temporary name in the same directory, then rename.

A reader (or a later recipe stage) therefore sees either the complete old file,
the complete new file, or no file; never a half-written one, even after ``kill -9``.

An output that cannot be written raises :class:`OutputError` (an ``OSError`` with the
errno of the cause), whose message is one line naming the file and the OS's reason:
``cannot write exp/ensemble/checkpoint.pt: No space left on device``. That includes a
failure of the writer inside :func:`atomic_path` that does not say why (``torch.save``
raises ``RuntimeError: [enforce fail at inline_container.cc:...] ... file write failed``
on a full disk): when the file system is then (almost) full, the error is reported as
``ENOSPC``. The command-line entry point prints these errors as one line
(:func:`describe_os_error`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Union

PathLike = Union[str, "os.PathLike[str]"]

#: Free space (bytes) under which a writer's failure is taken to be a full disk.
LOW_SPACE_BYTES = 1 << 20

#: errnos of a failed write that name no file (the file being written is the one).
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS}


class OutputError(OSError):
    """An output file could not be written; ``str()`` is one line naming it and the reason."""

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


def describe_os_error(e: OSError) -> str:
    """One line for an ``OSError``: the path(s) and the OS's reason."""
    if isinstance(e, OutputError) or not e.strerror:
        return str(e)
    if e.filename is None:
        return e.strerror
    where = str(e.filename) + (f" -> {e.filename2}" if e.filename2 else "")
    return f"{where}: {e.strerror}"


def _output_error(e: OSError, path: Path, tmp: Path | None = None) -> OutputError:
    reason = e.strerror or str(e)
    if e.errno == errno.EEXIST and e.filename is not None and not os.path.isdir(e.filename):
        reason = f"{e.filename} exists and is not a directory"
    elif e.filename is not None and str(e.filename) not in (str(path), str(tmp)):
        reason = f"{reason} ({e.filename})"
    return OutputError(e.errno, reason, str(path))


def _full_disk_error(directory: Path, path: Path) -> OutputError | None:
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return None
    if free >= LOW_SPACE_BYTES:
        return None
    return OutputError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({free} bytes free in {directory})", str(path))


@contextlib.contextmanager
def atomic_path(path: PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    The temporary name keeps ``path``'s suffix (or ``suffix`` if given), so writers
    that pick a format from the file name (lhotse manifests, ``.npz``) still work.
    On an exception the temporary file is removed and ``path`` is left untouched.
    Failures to write are :class:`OutputError` naming ``path`` (module docstring); an
    error of the body about another file (an input it reads) passes unchanged.
    """
    path = Path(path)
    suffix = "".join(path.suffixes) if suffix is None else suffix
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _output_error(e, path) from e
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name.split('.')[0]}.", suffix=".tmp" + suffix, dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise _output_error(e, path, e.filename) from e  # e.filename: the temporary name, not worth showing
    tmp_path = Path(tmp)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        try:
            yield tmp_path
        except OutputError:
            raise
        except OSError as e:
            if (e.filename is not None and str(e.filename) == str(tmp_path)) or (
                    e.filename is None and e.errno in _WRITE_ERRNOS):
                raise _output_error(e, path, tmp_path) from e
            raise
        except Exception as e:
            # torch.save & co. report a failed write as a RuntimeError that does not say why
            full = _full_disk_error(path.parent, path)
            if full is not None:
                raise full from e
            raise
        try:
            os.replace(tmp_path, path)
        except OSError as e:
            raise _output_error(e, path, tmp_path) from e
    finally:
        if tmp_path.exists():
            with contextlib.suppress(OSError):
                tmp_path.unlink()


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
