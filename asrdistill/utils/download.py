"""Resumable, verified downloads that never leave a half-written file.

Bytes go to ``<dest>.part``; an interrupted download resumes from there (HTTP
``Range``) on the next call; only a complete (and, when given, size- and
checksum-verified) file is renamed to ``dest``. ``file://`` URLs work too, which is
how tests and offline mirrors use it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

from .progress import progress as tqdm

log = logging.getLogger(__name__)


class DownloadError(RuntimeError):
    pass


def sha256sum(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def download_file(
    url: str,
    dest,
    expected_size: Optional[int] = None,
    sha256: Optional[str] = None,
    force: bool = False,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` (resuming a previous partial download).

    Returns ``dest``. An existing ``dest`` is kept when it passes the checks (unless
    ``force``). Raises :class:`DownloadError` naming the URL on a failed or
    inconsistent download; the ``.part`` file is kept so the next call resumes.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and not force:
        _verify(dest, url, expected_size, sha256)
        log.info("%s exists and is complete; not downloading again", dest)
        return dest
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    if expected_size is not None and offset > expected_size:
        part.unlink()
        offset = 0
    request = urllib.request.Request(url)
    if offset and url.startswith(("http://", "https://")):
        request.add_header("Range", f"bytes={offset}-")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = getattr(response, "status", None)
            if offset and status != 206:  # server ignored Range (or file://): start again
                offset = 0
            total = response.headers.get("Content-Length")
            total = int(total) + offset if total is not None else expected_size
            mode = "ab" if offset else "wb"
            with open(part, mode) as out, tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, desc=dest.name, disable=not progress
            ) as bar:
                while True:
                    block = response.read(1 << 16)
                    if not block:
                        break
                    out.write(block)
                    bar.update(len(block))
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise DownloadError(f"download of {url} failed after {part.stat().st_size if part.exists() else 0} bytes: {e}; "
                            f"run again to resume") from e
    size = part.stat().st_size
    if total is not None and size != total:
        raise DownloadError(f"download of {url} incomplete: {size} of {total} bytes; run again to resume")
    _verify(part, url, expected_size, sha256)
    os.replace(part, dest)
    return dest


def _verify(path: Path, url: str, expected_size: Optional[int], sha256: Optional[str]) -> None:
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        raise DownloadError(f"{path} (from {url}): {size} bytes, expected {expected_size}")
    if sha256 is not None:
        digest = sha256sum(path)
        if digest != sha256:
            path.unlink()
            raise DownloadError(f"{path} (from {url}): sha256 {digest} does not match {sha256}; removed")


def extract_archive(archive: Path, target_dir: Path) -> Path:
    """Unpack ``archive`` into ``target_dir`` (a ``.{name}.extracted`` marker records success).

    The archive is unpacked into a temporary directory first and its entries are then moved
    in, merging into directories that already exist (several archives may share a top
    directory, as LibriSpeech's parts share ``LibriSpeech/``); an interrupted unpack leaves
    no partial entry in ``target_dir``.
    """
    marker = target_dir / f".{archive.name}.extracted"
    if marker.exists():
        return target_dir
    tmp = target_dir.with_name(target_dir.name + ".extracting")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.unpack_archive(str(archive), str(tmp))
    target_dir.mkdir(parents=True, exist_ok=True)
    _merge_into(tmp, target_dir)
    shutil.rmtree(tmp)
    marker.touch()
    return target_dir


def _merge_into(src: Path, dest: Path) -> None:
    for entry in src.iterdir():
        target = dest / entry.name
        if entry.is_dir() and target.is_dir():
            _merge_into(entry, target)
            continue
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        os.replace(entry, target)
