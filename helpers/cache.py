"""The files the book reads from the Keras cache, and how they get there verified.

Chapters load data and weights with the standard Keras calls
(`keras.datasets.fashion_mnist.load_data()`, ...), which look in the Keras cache
(`$KERAS_HOME`, default `~/.keras`) before they download. This module knows
every file those calls need: its place in the cache, its origin and its
sha256. `python -m helpers.prefetch` uses it to fill the cache from local
folders or by download; chapters call `ensure_files` in their setup cell.

Downloads come from each file's official origin, or, when the environment
variable BOOK_MIRROR_URL is set (e.g. `http://192.168.1.10:8000/`), from that
mirror instead: every file at its path in the Keras cache under the URL
(`datasets/fashion-mnist/train-images-idx3-ubyte.gz`,
`models/mobilenet_2_5_224_tf_no_top.h5`, `datasets/PBC_dataset_normal_DIB.zip`),
which is what `python -m http.server` serves from a `~/.keras` that an online
prefetch filled. A mirror changes where bytes come from, never what is
accepted: every file is still checked against the sha256 listed here.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.parse
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

PREFETCH_COMMAND = "python -m helpers.prefetch"
MIRROR_VARIABLE = "BOOK_MIRROR_URL"


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
) + (
    # MobileNet v1, alpha 0.25, ImageNet weights without the classifier
    # (chapters 03-07): the file keras.applications.MobileNet(alpha=0.25,
    # include_top=False) asks for. Keras publishes no hash for it; this is the
    # sha256 of the copy in ../shared/assets (see its MANIFEST.tsv).
    BookFile(
        group="mobilenet",
        name="mobilenet_2_5_224_tf_no_top.h5",
        cache_subdir="models",
        origin="https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/"
        "mobilenet_2_5_224_tf_no_top.h5",
        sha256="dbdb03ee2a22fd895301636cd328b234bb3a9952358f436d82f46b81e0d5b0bf",
    ),
)


class ChecksumError(ValueError):
    """A file's content does not have the sha256 the book expects."""


def keras_home() -> Path:
    """The Keras cache folder: `$KERAS_HOME`, or `~/.keras`."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def cache_path(book_file: BookFile) -> Path:
    """Where the Keras loading call looks for `book_file`."""
    return keras_home() / book_file.cache_subdir / book_file.name


def mirror_url() -> str:
    """The mirror in `$BOOK_MIRROR_URL`, ending in "/"; "" when unset (download from the official origins)."""
    value = os.environ.get(MIRROR_VARIABLE, "").strip()
    if not value:
        return ""
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(
            f"{MIRROR_VARIABLE}={value!r} is not the http:// or https:// URL of a folder "
            f"(e.g. http://192.168.1.10:8000/). Fix it, or unset it to download from the official origins."
        )
    return value.rstrip("/") + "/"


def download_url(official: str, cache_relative: str) -> str:
    """Where a file is downloaded from: `official`, or `cache_relative` under the mirror when one is set."""
    mirror = mirror_url()
    return mirror + cache_relative if mirror else official


def book_file_url(book_file: BookFile) -> str:
    """Where `book_file` is downloaded from (its origin unless `$BOOK_MIRROR_URL` is set)."""
    return download_url(book_file.origin, f"{book_file.cache_subdir}/{book_file.name}")


def _keras_cache_dir() -> str:
    """`keras_home()`, created, for `keras.utils.get_file(cache_dir=...)`.

    Passed explicitly because Keras reads `$KERAS_HOME` once, when it is
    imported, and falls back to /tmp/.keras when the folder does not exist yet.
    """
    home = keras_home()
    home.mkdir(parents=True, exist_ok=True)
    return str(home)


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


def _copy_verified(source: Path, target: Path, check) -> None:
    """Run `check(source)`, then copy it to `target` through a temporary file (no half-written file)."""
    check(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        shutil.copyfile(source, temporary_path)
        temporary_path.replace(target)
    finally:
        temporary_path.unlink(missing_ok=True)


def _install_verified(source: Path, book_file: BookFile) -> Path:
    """Copy a verified `source` to where Keras looks for `book_file`."""
    target = cache_path(book_file)
    _copy_verified(source, target, lambda path: verify(path, book_file))
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
            book_file.name, origin=book_file_url(book_file), cache_subdir=book_file.cache_subdir,
            cache_dir=_keras_cache_dir(),
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
    url = book_file_url(book_file)  # a malformed $BOOK_MIRROR_URL raises ValueError here, naming it
    try:
        downloaded = _download(book_file)
    except Exception as error:  # Keras wraps network errors in plain Exception
        raise FileNotFoundError(
            _missing_message(book_file, folders, f"the download from {url} failed ({error})")
        ) from error
    try:
        verify(downloaded, book_file)
    except ChecksumError as error:
        downloaded.unlink(missing_ok=True)  # Keras would reuse it: it keeps any file it finds
        raise ChecksumError(f"{error} It was downloaded from {url} and has been deleted from the cache.") from error
    return "downloaded"


def ensure_files(group: str) -> None:
    """Check (or download) the files of `group` before a chapter uses them; taught in chapter 01."""
    for book_file in files_in_group(group):
        fetch(book_file)


# The PBC blood-cell images (chapters 03-07): a fixed subset of the official
# archive (Acevedo et al. 2020, Mendeley Data, doi:10.17632/snkd93bnjr.1,
# CC BY 4.0). For each of the 11 fine classes given by the file-name prefix,
# the first 1,000 file names in sorted order (PMY has only 592): 10,592 JPEGs
# in their original folders, each listed with its sha256 in pbc_subset.sha256.
PBC_SUBSET_SUBDIR = "datasets/pbc_subset"
PBC_ARCHIVE_NAME = "PBC_dataset_normal_DIB.zip"
PBC_ARCHIVE_ORIGIN = (
    "https://data.mendeley.com/public-files/datasets/snkd93bnjr/files/"
    "2fc38728-2ae7-4a62-a857-032af82334c3/file_downloaded"
)
PBC_EXTRACTED_NAME = "PBC_dataset_normal_DIB_extracted"  # the folder keras.utils.get_file(extract=True) uses
PBC_HASH_LIST = Path(__file__).with_name("pbc_subset.sha256")


def pbc_subset_hashes() -> dict[str, str]:
    """Relative path ("ig/MY_1234.jpg") -> sha256 of every image in the book's subset."""
    pairs = (line.split(maxsplit=1) for line in PBC_HASH_LIST.read_text().splitlines() if line.strip())
    return {path.strip(): digest for digest, path in pairs}


def pbc_subset_dir() -> Path:
    """The folder in the Keras cache that holds the subset, one subfolder per group."""
    return keras_home() / PBC_SUBSET_SUBDIR


def _check_image(expected: str):
    def check(path: Path) -> None:
        actual = content_sha256(path)
        if actual != expected:
            raise ChecksumError(
                f"{path} is corrupt or not the PBC image the book uses: sha256 {actual}, "
                f"expected {expected}. Fix: `{PREFETCH_COMMAND} --from FOLDER` with a good "
                f"copy of the subset, or `{PREFETCH_COMMAND}` online."
            )
    return check


def pbc_archive_url() -> str:
    """Where the PBC archive is downloaded from (the official origin unless `$BOOK_MIRROR_URL` is set)."""
    return download_url(PBC_ARCHIVE_ORIGIN, f"datasets/{PBC_ARCHIVE_NAME}")


def _remove_pbc_archive() -> None:
    """Delete the downloaded archive and its extraction, so that the next run downloads it again."""
    datasets = keras_home() / "datasets"
    (datasets / PBC_ARCHIVE_NAME).unlink(missing_ok=True)
    shutil.rmtree(datasets / PBC_EXTRACTED_NAME, ignore_errors=True)


def _download_pbc_archive() -> Path:
    """Download the official PBC archive with Keras, check and extract it; return the extracted folder.

    An archive that is not a complete zip (a cut-off or damaged download) is
    deleted and refused with ChecksumError: Keras would reuse it next time.
    """
    import keras  # imported here: only a download needs it

    url = pbc_archive_url()
    archive = Path(keras.utils.get_file(PBC_ARCHIVE_NAME, origin=url, cache_subdir="datasets",
                                        cache_dir=_keras_cache_dir()))
    extracted = archive.with_name(PBC_EXTRACTED_NAME)
    try:
        with zipfile.ZipFile(archive) as opened:
            damaged = opened.testzip()  # reads every member and checks its CRC-32
            if damaged is not None:
                raise zipfile.BadZipFile(f"member {damaged} fails its CRC-32 check")
            opened.extractall(extracted)  # zipfile never writes outside `extracted`
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        _remove_pbc_archive()
        raise ChecksumError(
            f"{archive} is not a complete zip archive ({error}): the download from {url} "
            f"was cut off or altered, and has been deleted. Fix: run `{PREFETCH_COMMAND}` again, "
            f"or `{PREFETCH_COMMAND} --from FOLDER` with a folder holding pbc_subset/."
        ) from error
    return extracted


def _pbc_roots(folder: Path) -> list[Path]:
    """Folders under `folder` that may hold the group subfolders."""
    roots = [folder / "pbc_subset", folder, folder / "PBC_dataset_normal_DIB"]
    return [root for root in roots if (root / "basophil").is_dir()]


def _copy_pbc_images(missing: dict[str, str], roots: list[Path], target: Path) -> set[str]:
    """Copy each missing image found under `roots` into `target`, verified; drop it from `missing`.

    All or nothing: every image found is verified before any is copied, so a
    source holding one corrupt image leaves the cache as it was.
    """
    found = {}  # relative path -> the root that holds it
    for relative, digest in missing.items():
        root = next((root for root in roots if (root / relative).is_file()), None)
        if root is not None:
            _check_image(digest)(root / relative)
            found[relative] = root
    for relative, root in found.items():
        _copy_verified(root / relative, target / relative, _check_image(missing.pop(relative)))
    return {str(root) for root in found.values()}


def fetch_pbc_subset(folders: list[Path] = (), download: bool = True) -> str:
    """Make the Keras cache hold every image of the subset, each verified by sha256; say how.

    A corrupt cached image is replaced. Local folders are searched before the
    official archive is downloaded. Raises ChecksumError or FileNotFoundError
    naming the images and the fix.
    """
    expected = pbc_subset_hashes()
    target = pbc_subset_dir()
    missing = {}
    for relative, digest in expected.items():
        path = target / relative
        if not (path.is_file() and content_sha256(path) == digest):
            path.unlink(missing_ok=True)
            missing[relative] = digest
    if not missing:
        return "cached"
    sources = [root for folder in folders for root in _pbc_roots(Path(folder))]
    copied_from = _copy_pbc_images(missing, sources, target)
    if missing and download:
        url = pbc_archive_url()  # a malformed $BOOK_MIRROR_URL raises ValueError here, naming it
        try:
            archive_roots = _pbc_roots(_download_pbc_archive())
        except ChecksumError:
            raise  # not a complete zip: already deleted, and the message says so
        except Exception as error:  # Keras wraps network errors in plain Exception
            raise FileNotFoundError(
                f"{len(missing)} of the {len(expected)} PBC images are missing from {target} "
                f"(e.g. {next(iter(missing))}), no --from folder holds them (looked in "
                f"{[str(s) for s in sources] or [str(f) for f in folders] or 'no folder'}), and "
                f"downloading {url} failed ({error}). Fix: `{PREFETCH_COMMAND}` "
                f"online, or `{PREFETCH_COMMAND} --from FOLDER` with a folder holding pbc_subset/."
            ) from error
        sources += archive_roots
        try:
            copied_from |= _copy_pbc_images(missing, archive_roots, target)
        except ChecksumError as error:
            _remove_pbc_archive()  # an altered archive must not be reused by the next run
            raise ChecksumError(f"{error} It came in the archive downloaded from {url}, "
                                f"which has been deleted from the cache.") from error
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of the {len(expected)} PBC images are missing from {target} "
            f"(e.g. {next(iter(missing))}); looked in {[str(s) for s in sources] or 'no folder'}"
            f"{'' if download else ' and downloading is switched off (--offline)'}. Fix: "
            f"`{PREFETCH_COMMAND}` online, or `{PREFETCH_COMMAND} --from FOLDER` with a folder "
            f"holding pbc_subset/ (e.g. ../shared/assets)."
        )
    return f"copied from {', '.join(sorted(copied_from))}"
