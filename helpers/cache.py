"""The files the book reads from the Keras cache, and how they get there verified.

Chapters load data and weights with the standard Keras calls
(`keras.datasets.fashion_mnist.load_data()`, ...), which look in the Keras cache
(`$KERAS_HOME`, default `~/.keras`) before they download. This module knows
every file those calls need: its place in the cache, its origin and its
sha256 (BOOK_FILES: Fashion-MNIST, the MobileNet weights). It also knows the
book's image sets (IMAGE_SETS: the PBC subset in datasets/pbc_subset, the BCCD
white-cell crops in datasets/bccd_wbc): folders of JPEGs copied out of a local
folder or a downloaded archive, each image checked against a sha256 list
committed beside this module (pbc_subset.sha256, bccd_wbc.sha256).
`python -m helpers.prefetch` uses it to fill the cache from local folders or by
download; chapters call `ensure_files` in their setup cell.

Downloads come from each file's official origin, or, when the environment
variable BOOK_MIRROR_URL is set (e.g. `http://192.168.1.10:8000/`), from that
mirror instead: every file at its path in the Keras cache under the URL
(`datasets/fashion-mnist/train-images-idx3-ubyte.gz`,
`models/mobilenet_2_5_224_tf_no_top.h5`, `datasets/PBC_dataset_normal_DIB.zip`,
`datasets/BCCD-7751031e0b41bcfdff998cbc4c698a445a60b49e.zip`), which is what
`python -m http.server` serves from a `~/.keras` that an online prefetch
filled. A mirror changes where bytes come from, never what is accepted: every
file is still checked against the sha256 listed here.
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
from collections.abc import Callable
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


# Image sets: folders of images in the Keras cache, each file listed with its
# sha256 in a list committed beside this module (the images never are). They
# come from a --from folder or from an archive downloaded with Keras. The archive
# itself is not hashed, only the images copied out of it: a repackaged archive
# holding the same images is accepted.


@dataclass(frozen=True)
class ImageSet:
    """A folder of images in the Keras cache, every file verified against a committed sha256 list."""

    group: str  # what a reader asks prefetch for, e.g. "pbc"
    label: str  # what messages call its images, e.g. "PBC"
    cache_subdir: str  # folder under $KERAS_HOME, e.g. "datasets/pbc_subset"
    hash_list: Path  # lines "<sha256>  <folder>/<file>.jpg"
    archive_name: str  # the downloaded archive's name in datasets/ (and on a mirror)
    archive_origin: str  # where the archive is downloaded from
    roots: tuple[str, ...]  # where the class folders may be, under a --from folder or the extraction ("." itself)
    marker: str  # a class folder: a root holds it

    @property
    def extracted_name(self) -> str:
        """The folder in datasets/ the archive is extracted to, named as keras.utils.get_file(extract=True) would."""
        return self.archive_name.split(".")[0] + "_extracted"


# The PBC blood-cell images (chapters 03-07): a fixed subset of the official
# archive (Acevedo et al. 2020, Mendeley Data, doi:10.17632/snkd93bnjr.1,
# CC BY 4.0). For each of the 11 fine classes given by the file-name prefix,
# the first 1,000 file names in sorted order (PMY has only 592): 10,592 JPEGs
# in their original folders, each listed with its sha256 in pbc_subset.sha256.
PBC = ImageSet(
    group="pbc",
    label="PBC",
    cache_subdir="datasets/pbc_subset",
    hash_list=Path(__file__).with_name("pbc_subset.sha256"),
    archive_name="PBC_dataset_normal_DIB.zip",
    archive_origin="https://data.mendeley.com/public-files/datasets/snkd93bnjr/files/"
    "2fc38728-2ae7-4a62-a857-032af82334c3/file_downloaded",
    roots=("pbc_subset", ".", "PBC_dataset_normal_DIB"),
    marker="basophil",
)

# White-cell crops from another lab (chapter 05): the BCCD dataset
# (Shenggan/BCCD_Dataset, MIT licence: 640x480 smears of another lab than
# PBC's), each white cell cropped by ParthaPratimBanik's published script (MIT) and
# labelled from Mooney's labels.csv, as organised in the repository
# apple2373/BCCD at commit BCCD_COMMIT: its folder BCCD_cropped/, 351 JPEGs in
# five class folders, each listed with its sha256 in bccd_wbc.sha256. The
# archive is GitHub's, which is not byte-stable: only the listed crops are
# copied out of it, each verified.
BCCD_COMMIT = "7751031e0b41bcfdff998cbc4c698a445a60b49e"
BCCD = ImageSet(
    group="bccd",
    label="BCCD white-cell",
    cache_subdir="datasets/bccd_wbc",
    hash_list=Path(__file__).with_name("bccd_wbc.sha256"),
    archive_name=f"BCCD-{BCCD_COMMIT}.zip",
    archive_origin=f"https://github.com/apple2373/BCCD/archive/{BCCD_COMMIT}.zip",
    roots=("bccd_wbc", ".", "BCCD_cropped", f"BCCD-{BCCD_COMMIT}/BCCD_cropped"),
    marker="Neutrophil",
)

IMAGE_SETS: tuple[ImageSet, ...] = (PBC, BCCD)


def image_set_hashes(image_set: ImageSet) -> dict[str, str]:
    """Relative path ("ig/MY_1234.jpg") -> sha256 of every image in `image_set`."""
    lines = image_set.hash_list.read_text().splitlines()
    pairs = (line.split(maxsplit=1) for line in lines if line.strip())
    return {path.strip(): digest for digest, path in pairs}


def image_set_dir(image_set: ImageSet) -> Path:
    """The folder in the Keras cache that holds `image_set`, one subfolder per class."""
    return keras_home() / image_set.cache_subdir


def pbc_subset_dir() -> Path:
    """The folder in the Keras cache that holds the PBC subset, one subfolder per group."""
    return image_set_dir(PBC)


def archive_url(image_set: ImageSet) -> str:
    """Where `image_set`'s archive is downloaded from (its origin unless `$BOOK_MIRROR_URL` is set)."""
    return download_url(image_set.archive_origin, f"datasets/{image_set.archive_name}")


def _fix(image_set: ImageSet) -> str:
    """The sentence that says how to get `image_set` into the cache."""
    return (f"Fix: `{PREFETCH_COMMAND}` online, or `{PREFETCH_COMMAND} --from FOLDER` with a folder "
            f"holding {Path(image_set.cache_subdir).name}/ (e.g. ../shared/assets).")


def _check_image(image_set: ImageSet, expected: str) -> Callable[[Path], None]:
    """A check that raises ChecksumError unless a file has the sha256 `expected`."""
    def check(path: Path) -> None:
        actual = content_sha256(path)
        if actual != expected:
            raise ChecksumError(
                f"{path} is corrupt or not the {image_set.label} image the book uses: sha256 {actual}, "
                f"expected {expected}. {_fix(image_set)}"
            )
    return check


def _remove_archive(image_set: ImageSet) -> None:
    """Delete the downloaded archive and its extraction, so that the next run downloads it again."""
    datasets = keras_home() / "datasets"
    (datasets / image_set.archive_name).unlink(missing_ok=True)
    shutil.rmtree(datasets / image_set.extracted_name, ignore_errors=True)


def _download_archive(image_set: ImageSet) -> Path:
    """Download `image_set`'s archive with Keras, check and extract it; return the extracted folder.

    An archive that is not a complete zip (a cut-off or damaged download) is
    deleted and refused with ChecksumError: Keras would reuse it next time.
    """
    import keras  # imported here: only a download needs it

    url = archive_url(image_set)
    archive = Path(keras.utils.get_file(image_set.archive_name, origin=url, cache_subdir="datasets",
                                        cache_dir=_keras_cache_dir()))
    extracted = archive.with_name(image_set.extracted_name)
    try:
        with zipfile.ZipFile(archive) as opened:
            damaged = opened.testzip()  # reads every member and checks its CRC-32
            if damaged is not None:
                raise zipfile.BadZipFile(f"member {damaged} fails its CRC-32 check")
            opened.extractall(extracted)  # zipfile never writes outside `extracted`
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        _remove_archive(image_set)
        raise ChecksumError(
            f"{archive} is not a complete zip archive ({error}): the download from {url} "
            f"was cut off or altered, and has been deleted. {_fix(image_set)}"
        ) from error
    return extracted


def _candidate_roots(image_set: ImageSet, folder: Path) -> list[Path]:
    """The folders under `folder` where `image_set`'s class folders may be."""
    return [folder / root for root in image_set.roots]


def _roots(image_set: ImageSet, folder: Path) -> list[Path]:
    """The folders under `folder` that hold `image_set`'s class folders (recognised by its marker)."""
    return [root for root in _candidate_roots(image_set, folder) if (root / image_set.marker).is_dir()]


def _where_looked(image_set: ImageSet, folders: list[Path], sources: list[Path]) -> str:
    """Where images were looked for: the roots found, or the places that held none."""
    if sources:
        return f"looked in {', '.join(str(s) for s in sources)}"
    candidates = [str(root) for folder in folders for root in _candidate_roots(image_set, folder)]
    if candidates:
        return f"no folder holds them (none of {', '.join(candidates)} has a {image_set.marker}/ subfolder)"
    return "no --from folder was given"


def _missing(image_set: ImageSet, missing: dict[str, str], total: int) -> str:
    """How many of `image_set`'s images are missing from the cache, with one example."""
    return (f"{len(missing)} of the {total:,} {image_set.label} images are missing from "
            f"{image_set_dir(image_set)} (e.g. {next(iter(missing))})")


def _copy_images(image_set: ImageSet, missing: dict[str, str], roots: list[Path], target: Path) -> set[str]:
    """Copy each missing image found under `roots` into `target`, verified; drop it from `missing`.

    All or nothing: every image found is verified before any is copied, so a
    source holding one corrupt image leaves the cache as it was.
    """
    found = {}  # relative path -> the root that holds it
    for relative, digest in missing.items():
        root = next((root for root in roots if (root / relative).is_file()), None)
        if root is not None:
            _check_image(image_set, digest)(root / relative)
            found[relative] = root
    for relative, root in found.items():
        _copy_verified(root / relative, target / relative, _check_image(image_set, missing.pop(relative)))
    return {str(root) for root in found.values()}


def fetch_image_set(image_set: ImageSet, folders: list[Path] = (), download: bool = True) -> str:
    """Make the Keras cache hold every image of `image_set`, each verified by sha256; say how.

    A corrupt cached image is replaced. Local folders are searched before the
    archive is downloaded. Raises ChecksumError or FileNotFoundError naming the
    images, where they were looked for and the fix.
    """
    folders = [Path(f) for f in folders]
    expected = image_set_hashes(image_set)
    target = image_set_dir(image_set)
    missing = {}
    for relative, digest in expected.items():
        path = target / relative
        if not (path.is_file() and content_sha256(path) == digest):
            path.unlink(missing_ok=True)
            missing[relative] = digest
    if not missing:
        return "cached"
    sources = [root for folder in folders for root in _roots(image_set, folder)]
    copied_from = _copy_images(image_set, missing, sources, target)
    if missing and download:
        url = archive_url(image_set)  # a malformed $BOOK_MIRROR_URL raises ValueError here, naming it
        try:
            archive_roots = _roots(image_set, _download_archive(image_set))
        except ChecksumError:
            raise  # not a complete zip: already deleted, and the message says so
        except Exception as error:  # Keras wraps network errors in plain Exception
            raise FileNotFoundError(
                f"{_missing(image_set, missing, len(expected))}, {_where_looked(image_set, folders, sources)}, "
                f"and downloading {url} "
                f"failed ({error}). {_fix(image_set)}"
            ) from error
        sources += archive_roots
        try:
            copied_from |= _copy_images(image_set, missing, archive_roots, target)
        except ChecksumError as error:
            _remove_archive(image_set)  # an altered archive must not be reused by the next run
            raise ChecksumError(f"{error} It came in the archive downloaded from {url}, "
                                f"which has been deleted from the cache.") from error
    if missing:
        raise FileNotFoundError(
            f"{_missing(image_set, missing, len(expected))}; {_where_looked(image_set, folders, sources)}"
            f"{'' if download else ' and downloading is switched off (--offline)'}. {_fix(image_set)}"
        )
    return f"copied from {', '.join(sorted(copied_from))}"


def fetch_pbc_subset(folders: list[Path] = (), download: bool = True) -> str:
    """Make the Keras cache hold every image of the PBC subset, verified; taught in chapter 03."""
    return fetch_image_set(PBC, folders, download)
