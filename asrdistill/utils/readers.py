"""Reading the toolkit's files so that a corrupt or truncated one names itself.

A truncated ``.jsonl.gz`` manifest used to end in click's bare ``Aborted!`` (an
``EOFError`` from gzip), a truncated alignment ``.npz`` in a raw ``BadZipFile``
traceback and a damaged ``.lca`` feature archive in ``decompress_float returned 6``
with no file or cut. Every reader of a manifest, feature archive, alignment,
checkpoint, model or graph goes through :func:`reading`, which turns any failure other
than a missing file into one :class:`CorruptFileError` line naming the file (and the
cut, where there is one); the command line prints it as such.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from .errors import UserError


class CorruptFileError(UserError):
    """A file that exists but cannot be read (truncated, corrupt, or not what it should be)."""


@contextlib.contextmanager
def reading(path, what: str = "file", where: str = "") -> Iterator[None]:
    """Run the body; any error but a missing file becomes :class:`CorruptFileError` naming ``path``.

    ``what`` says what the file is (``manifest``, ``alignment``...), ``where`` adds context
    (e.g. ``cut 3_theo_0``). A :class:`FileNotFoundError` passes through unchanged (it
    names the file already), and so does a :class:`CorruptFileError` from an inner reader.
    """
    try:
        yield
    except (FileNotFoundError, CorruptFileError):
        raise
    except Exception as e:  # noqa: BLE001 - any failure of a reader means the file is unusable
        detail = str(e).strip().splitlines()[0] if str(e).strip() else ""
        context = f" ({where})" if where else ""
        raise CorruptFileError(f"{path}: cannot read this {what}{context}, truncated or corrupt? "
                               f"{type(e).__name__}{': ' + detail if detail else ''}") from e


def read_cuts(path):
    """A lhotse cut manifest, read in full (so a truncated file fails here, naming itself)."""
    from lhotse import CutSet

    with reading(path, "manifest"):
        return CutSet.from_file(Path(path)).to_eager()
