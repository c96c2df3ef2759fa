"""The files the book reads from the Keras cache, and how they get there verified.

Chapters load data and weights with the standard Keras calls
(`keras.datasets.fashion_mnist.load_data()`, ...), which look in the Keras cache
(`$KERAS_HOME`, default `~/.keras`) before they download. This module knows
every file those calls need: its place in the cache, its origin and its
sha256. `python -m helpers.prefetch` uses it to fill the cache from local
folders or by download; chapters call `ensure_files` in their setup cell.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

PREFETCH_COMMAND = "python -m helpers.prefetch"


@dataclass(frozen=True)
class BookFile:
    """One file in the Keras cache that a chapter reads."""

    group: str  # what a reader asks for, e.g. "fashion-mnist"
    name: str  # file name in the cache
    cache_subdir: str  # folder under $KERAS_HOME
    origin: str  # where Keras downloads it from
    sha256: str  # of the file; of its decompressed content for .gz files
    debian_package: str = ""  # a Debian package that ships the file, if any


# Fashion-MNIST (chapters 01-02). The hashes are of the decompressed IDX
# content: mirrors and Debian's package recompress the archives, so the .gz
# bytes differ while the images do not. These contents have the MD5s that
# Zalando publishes for the unpacked files (f4a8712d..., 9018921c...,
# 8181f547..., 15d48437...).
_FASHION_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_FASHION = {
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
}

BOOK_FILES: tuple[BookFile, ...] = tuple(
    BookFile(
        group="fashion-mnist",
        name=name,
        cache_subdir="datasets/fashion-mnist",
        origin=_FASHION_ORIGIN + name,
        sha256=digest,
        debian_package="dataset-fashion-mnist",
    )
    for name, digest in _FASHION.items()
)


class ChecksumError(ValueError):
    """A file's content does not have the sha256 the book expects."""


def keras_home() -> Path:
    """The Keras cache folder: `$KERAS_HOME`, or `~/.keras`."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def cache_path(book_file: BookFile) -> Path:
    """Where the Keras loading call looks for `book_file`."""
    return keras_home() / book_file.cache_subdir / book_file.name


def files_in_group(group: str) -> tuple[BookFile, ...]:
    """The book's files for one group (e.g. "fashion-mnist")."""
    found = tuple(f for f in BOOK_FILES if f.group == group)
    if not found:
        known = sorted({f.group for f in BOOK_FILES})
        raise ValueError(f"Unknown file group {group!r}; the book knows {known}.")
    return found


def content_sha256(path: Path) -> str:
    """sha256 of a file, or of the decompressed content of a .gz file."""
    digest = hashlib.sha256()
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    except (OSError, EOFError) as error:  # not gzip, or truncated
        return f"unreadable ({error})"
    return digest.hexdigest()


def verify(path: Path, book_file: BookFile) -> None:
    """Raise ChecksumError unless `path` holds `book_file`'s expected content."""
    actual = content_sha256(path)
    if actual != book_file.sha256:
        what = "decompressed content" if path.suffix == ".gz" else "file"
        raise ChecksumError(
            f"{path} is corrupt or not the file the book uses: its {what} "
            f"has sha256 {actual}, expected {book_file.sha256}. "
            f"Delete it and run `{PREFETCH_COMMAND}` (online) or "
            f"`{PREFETCH_COMMAND} --from FOLDER` with a folder holding a good copy."
        )


def _install_verified(source: Path, book_file: BookFile) -> Path:
    """Verify `source`, then copy it into the cache through a temporary file (no half-written file)."""
    verify(source, book_file)
    target = cache_path(book_file)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        shutil.copyfile(source, temporary_path)
        temporary_path.replace(target)
    finally:
        temporary_path.unlink(missing_ok=True)
    return target


def _local_candidates(book_file: BookFile, folders: list[Path]) -> list[Path]:
    """Places in `folders` where a copy of `book_file` may be."""
    last_part = Path(book_file.cache_subdir).name
    places = []
    for folder in folders:
        places += [folder / book_file.name, folder / last_part / book_file.name]
    return places


def _download(book_file: BookFile) -> Path:
    """Download `book_file` with Keras into the cache; return its path."""
    import keras  # imported here: only a download needs it

    return Path(
        keras.utils.get_file(
            book_file.name, origin=book_file.origin, cache_subdir=book_file.cache_subdir
        )
    )


def _missing_message(book_file: BookFile, folders: list[Path], reason: str) -> str:
    looked = [str(cache_path(book_file))] + [
        str(p) for p in _local_candidates(book_file, folders)
    ]
    debian = (
        f" On Debian or Ubuntu, `apt-get install {book_file.debian_package}` puts "
        f"a copy under /usr/share/datasets/; pass that folder with --from."
        if book_file.debian_package
        else ""
    )
    return (
        f"{book_file.cache_subdir}/{book_file.name} is missing: looked in "
        f"{', '.join(looked)}; {reason}. Fix: run `{PREFETCH_COMMAND}` with a "
        f"network connection, or `{PREFETCH_COMMAND} --from FOLDER` with a folder "
        f"(a USB stick, a workshop share) that holds the file.{debian}"
    )


def fetch(book_file: BookFile, folders: list[Path] = (), download: bool = True) -> str:
    """Make the cache hold a verified `book_file`; say how ("cached", "copied from X", "downloaded").

    A corrupt cached copy is deleted and replaced. A local copy is used before
    the network. Raises ChecksumError for a bad copy and FileNotFoundError
    when no copy can be had.
    """
    folders = [Path(f) for f in folders]
    target = cache_path(book_file)
    if target.exists():
        try:
            verify(target, book_file)
            return "cached"
        except ChecksumError:
            target.unlink()  # never leave a corrupt file where Keras reads
    bad_copies = []
    for candidate in _local_candidates(book_file, folders):
        if candidate.is_file():
            try:
                _install_verified(candidate, book_file)
                return f"copied from {candidate.parent}"
            except ChecksumError as error:
                bad_copies.append(str(error))
    if bad_copies and not download:
        raise ChecksumError(" ".join(bad_copies))
    if not download:
        raise FileNotFoundError(
            _missing_message(book_file, folders, "downloading is switched off (--offline)")
        )
    try:
        downloaded = _download(book_file)
    except Exception as error:  # Keras wraps network errors in plain Exception
        raise FileNotFoundError(
            _missing_message(book_file, folders, f"the download from {book_file.origin} failed ({error})")
        ) from error
    try:
        verify(downloaded, book_file)
    except ChecksumError:
        downloaded.unlink(missing_ok=True)
        raise
    return "downloaded"


def ensure_files(group: str) -> None:
    """Check (or download) the files of `group` before a chapter uses them; taught in chapter 01."""
    for book_file in files_in_group(group):
        fetch(book_file)
