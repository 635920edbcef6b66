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
import os
from pathlib import Path
from typing import Iterable, Iterator

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


def _feature_paths(cut, convert):
    """``cut`` with its feature archive path passed through ``convert`` (cuts without features as they are)."""
    features = getattr(cut, "features", None)
    if features is None or not features.storage_path:
        return cut
    from lhotse.utils import fastcopy

    return fastcopy(cut, features=fastcopy(features, storage_path=convert(features.storage_path)))


def _resolver(manifest: Path):
    """A feature archive path as written in ``manifest``, made absolute (relative: to its directory)."""
    base = Path(manifest).resolve().parent

    def resolve(storage_path: str) -> str:
        return storage_path if os.path.isabs(storage_path) else os.path.normpath(base / storage_path)

    return resolve


def read_cuts(path):
    """A lhotse cut manifest, read in full (so a truncated file fails here, naming itself).

    Feature archive paths that the manifest holds relative to its own directory (as
    :func:`write_cuts` writes them) come back absolute, so a data directory can be moved
    or copied whole and its manifests read the archives beside them. Absolute paths (older
    manifests) are kept as they are.
    """
    from lhotse import CutSet

    resolve = _resolver(path)
    with reading(path, "manifest"):
        return CutSet.from_cuts([_feature_paths(c, resolve) for c in CutSet.from_file(Path(path))])


def iter_cuts(path) -> Iterator:
    """The cuts of a manifest one by one, without reading it whole (paths as :func:`read_cuts`)."""
    from lhotse import CutSet

    resolve = _resolver(path)
    with reading(path, "manifest"):
        for cut in CutSet.from_jsonl_lazy(Path(path)):
            yield _feature_paths(cut, resolve)


def write_cuts(cuts: Iterable, path) -> None:
    """Write a cut manifest atomically, feature archive paths relative to its directory.

    The inverse of :func:`read_cuts`: a manifest and the archives it names move together
    (``data/fbank`` copied elsewhere reads its own archives, not the original's). An
    archive on another file system root stays absolute.
    """
    from lhotse import CutSet

    from .atomic import atomic_path

    base = Path(path).resolve().parent

    def relative(storage_path: str) -> str:
        try:
            return os.path.relpath(Path(storage_path).resolve(), base)
        except ValueError:  # another drive (Windows): no relative path exists
            return storage_path

    with atomic_path(path) as tmp:
        CutSet.from_cuts([_feature_paths(c, relative) for c in cuts]).to_file(tmp)
