"""The reader's online path: `python -m helpers.prefetch` downloads, verifies and caches every file.

A server on 127.0.0.1 (a thread, one per test) stands in for every origin, through
the one switch helpers/cache.py has for that: BOOK_MIRROR_URL. It serves small
generated stand-ins at their paths in the Keras cache: Fashion-MNIST-shaped IDX
files (gzip'd), a weights file, a zip in the official PBC archive's layout and one
in the layout of GitHub's archive of the BCCD repository. Only the expected hashes
are the test's (the book's file entries and its image sets' hash lists,
monkeypatched); downloading, extracting, selecting, verifying and caching are the
production code's. No connection leaves 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.server
import io
import socket
import struct
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import keras  # imported before a test moves KERAS_HOME: Keras reads it once, at import
import numpy as np
import pytest
from fakes import jpeg_bytes  # the tiny generated JPEGs of the PBC tests

from helpers import cache, prefetch

# The stand-in archive (PBC_dataset_normal_DIB/<group>/<file>.jpg) and what the
# book's rule keeps of it: for each fine class (file-name prefix) the first names
# in sorted order, 2 here (the book: 1,000); names without a fine label (IG_,
# NEUTROPHIL_) and the real archive's stray .DS_ file are left out. The test's
# hash list holds exactly the kept images; the module copies what the list holds.
ARCHIVE_IMAGES = {  # path under PBC_dataset_normal_DIB/ -> kept in the subset
    "basophil/BA_1.jpg": True,
    "basophil/BA_2.jpg": True,
    "basophil/BA_3.jpg": False,  # third of its class
    "ig/IG_4.jpg": False,  # no fine label
    "ig/MMY_5.jpg": True,
    "ig/MY_6.jpg": True,
    "ig/MY_7.jpg": True,
    "ig/MY_8.jpg": False,  # third of its class
    "neutrophil/NEUTROPHIL_9.jpg": False,  # no fine label
    "neutrophil/SNE_10.jpg": True,
    "neutrophil/.DS_11.jpg": False,  # a stray file, as in the real archive
}
SUBSET = sorted(path for path, kept in ARCHIVE_IMAGES.items() if kept)

# The stand-in BCCD archive, in the layout of GitHub's archive of a repository at a
# commit (BCCD-<commit>/...): the crops in BCCD_cropped/<Class>/ and the
# repository's other files. Only the crops the test's hash list holds are copied.
BCCD_TOP = f"BCCD-{cache.BCCD_COMMIT}"
BCCD_ARCHIVE_FILES = {  # path under BCCD-<commit>/ -> in the hash list
    "BCCD_cropped/Basophil/BloodImage_00008_1.jpg": True,
    "BCCD_cropped/Neutrophil/BloodImage_00001_1.jpg": True,
    "BCCD_cropped/Neutrophil/BloodImage_00002_1.jpg": True,
    "BCCD_cropped/Neutrophil/BloodImage_00003_1.jpg": False,  # a crop the list does not hold
    "README.md": False,  # another file of the repository
}
BCCD_CROPS = sorted(path.removeprefix("BCCD_cropped/") for path, listed in BCCD_ARCHIVE_FILES.items() if listed)

FASHION_IMAGES = "datasets/fashion-mnist/train-images-idx3-ubyte.gz"
WEIGHTS = "models/mobilenet_2_5_224_tf_no_top.h5"
ARCHIVE = f"datasets/{cache.PBC.archive_name}"
EXTRACTED = f"datasets/{cache.PBC.extracted_name}"
BCCD_ARCHIVE = f"datasets/{cache.BCCD.archive_name}"
BCCD_EXTRACTED = f"datasets/{cache.BCCD.extracted_name}"


def idx_bytes(array: np.ndarray) -> bytes:
    """`array` (uint8) in the IDX format of the Fashion-MNIST files: magic 0x08 0x0N, sizes, bytes."""
    return struct.pack(f">I{array.ndim}I", 0x0800 + array.ndim, *array.shape) + array.tobytes()


def zip_archive(top: str, files: dict[str, bytes]) -> bytes:
    """A zip holding `files` under the folder `top`, with folder entries and fixed timestamps."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        folders = sorted({parent.as_posix() for path in files for parent in Path(path).parents} - {"."})
        for name in [f"{top}/"] + [f"{top}/{f}/" for f in folders]:
            archive.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), b"")
        for path, content in files.items():
            info = zipfile.ZipInfo(f"{top}/{path}", date_time=(2020, 1, 1, 0, 0, 0))
            archive.writestr(info, content, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def pbc_archive(images: dict[str, bytes]) -> bytes:
    """A zip in the official PBC archive's layout."""
    return zip_archive("PBC_dataset_normal_DIB", images)


def broken(body: bytes, fault: str) -> tuple[bytes, int]:
    """What a faulty server sends instead of `body`: the bytes, and the Content-Length it declares."""
    half = len(body) // 2
    if fault == "cut off":  # the connection drops halfway through
        return body[:half], len(body)
    if fault == "truncated":  # the mirror holds a short copy
        return body[:half], half
    if fault == "altered":  # one byte flipped in the middle
        return body[:half] + bytes([body[half] ^ 0xFF]) + body[half + 1:], len(body)
    raise ValueError(f"unknown fault {fault!r}")


class Mirror:
    """A file server on 127.0.0.1 that records every request and can break the response for one path."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files  # path under the mirror -> bytes served
        self.faults: dict[str, str] = {}  # path -> a fault of `broken`
        self.requests: list[str] = []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.lstrip("/")
                mirror.requests.append(path)
                if path not in mirror.files:
                    self.send_error(404)
                    return
                body, length = mirror.files[path], len(mirror.files[path])
                if path in mirror.faults:
                    body, length = broken(body, mirror.faults[path])
                self.send_response(200)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(body)  # HTTP/1.0: the connection closes after each response

            def log_message(self, *args) -> None:  # keep pytest's output clean
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)  # a short poll: shutdown() waits up to one interval

    def __enter__(self) -> Mirror:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@dataclasses.dataclass
class OnlineBook:
    """The stand-ins as the test expects them in the cache, and the server that serves them."""

    mirror: Mirror
    book_files: tuple[cache.BookFile, ...] = dataclasses.field(repr=False)  # expecting the stand-ins' hashes
    images: dict[str, bytes] = dataclasses.field(repr=False)  # the archive's, by path under PBC_dataset_normal_DIB/
    bccd_files: dict[str, bytes] = dataclasses.field(repr=False)  # the BCCD archive's, by path under BCCD_TOP
    pbc: cache.ImageSet  # expecting the stand-ins' hashes
    bccd: cache.ImageSet

    def products(self, path: str) -> set[str]:
        """The files one served file puts in the Keras cache (relative paths)."""
        if path == ARCHIVE:
            return ({ARCHIVE} | {f"{EXTRACTED}/PBC_dataset_normal_DIB/{p}" for p in self.images}
                    | {f"{self.pbc.cache_subdir}/{p}" for p in SUBSET})
        if path == BCCD_ARCHIVE:
            return ({BCCD_ARCHIVE} | {f"{BCCD_EXTRACTED}/{BCCD_TOP}/{p}" for p in self.bccd_files}
                    | {f"{self.bccd.cache_subdir}/{p}" for p in BCCD_CROPS})
        return {path}

    def full_cache(self) -> set[str]:
        """The files a successful prefetch puts in the Keras cache."""
        return set().union(*(self.products(path) for path in self.mirror.files))


def files_in(folder: Path) -> set[str]:
    """Every file under `folder`, as relative paths."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def only_localhost(real_create_connection: Callable[..., socket.socket]) -> Callable[..., socket.socket]:
    """`socket.create_connection` refusing every host but 127.0.0.1 (urllib connects through it)."""
    def create_connection(address: tuple[str, int], *args, **kwargs) -> socket.socket:
        if address[0] != "127.0.0.1":
            raise OSError(f"the online test tried to reach {address[0]}: it must use only its own server")
        return real_create_connection(address, *args, **kwargs)
    return create_connection


@pytest.fixture()
def online_book(tmp_path, keras_home, monkeypatch) -> Iterator[OnlineBook]:
    """Stand-ins served on 127.0.0.1, BOOK_MIRROR_URL pointing there, the book expecting their hashes."""
    rng = np.random.default_rng(15)
    fashion = {  # Fashion-MNIST's four files, 6 training and 4 test images of 28 x 28
        "train-images-idx3-ubyte.gz": idx_bytes(rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)),
        "train-labels-idx1-ubyte.gz": idx_bytes(rng.integers(0, 10, 6, dtype=np.uint8)),
        "t10k-images-idx3-ubyte.gz": idx_bytes(rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)),
        "t10k-labels-idx1-ubyte.gz": idx_bytes(rng.integers(0, 10, 4, dtype=np.uint8)),
    }
    weights = b"\x89HDF\r\n\x1a\n" + rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()
    images = {path: jpeg_bytes(20 * number, size=(36, 36)) for number, path in enumerate(ARCHIVE_IMAGES)}
    bccd_files = {path: jpeg_bytes(30 * number, size=(40 + number, 44)) if path.endswith(".jpg") else b"# BCCD\n"
                  for number, path in enumerate(BCCD_ARCHIVE_FILES)}

    files = {f"datasets/fashion-mnist/{name}": gzip.compress(content, mtime=0) for name, content in fashion.items()}
    files[WEIGHTS] = weights
    files[ARCHIVE] = pbc_archive(images)
    files[BCCD_ARCHIVE] = zip_archive(BCCD_TOP, bccd_files)
    expected = {name: hashlib.sha256(content).hexdigest() for name, content in fashion.items()}
    expected[Path(WEIGHTS).name] = hashlib.sha256(weights).hexdigest()
    book_files = tuple(dataclasses.replace(f, sha256=expected[f.name]) for f in cache.BOOK_FILES)
    pbc = dataclasses.replace(cache.PBC, hash_list=tmp_path / "pbc_subset.sha256")
    pbc.hash_list.write_text("".join(f"{hashlib.sha256(images[p]).hexdigest()}  {p}\n" for p in SUBSET))
    bccd = dataclasses.replace(cache.BCCD, hash_list=tmp_path / "bccd_wbc.sha256")
    bccd.hash_list.write_text("".join(f"{hashlib.sha256(bccd_files['BCCD_cropped/' + p]).hexdigest()}  {p}\n"
                                      for p in BCCD_CROPS))
    assert {f"{f.cache_subdir}/{f.name}" for f in book_files} | {ARCHIVE, BCCD_ARCHIVE} == set(files), \
        "a book file without stand-in"
    assert [s.group for s in cache.IMAGE_SETS] == ["pbc", "bccd"], "an image set without stand-in"
    for module in (cache, prefetch):
        monkeypatch.setattr(module, "BOOK_FILES", book_files)
        monkeypatch.setattr(module, "IMAGE_SETS", (pbc, bccd))

    # Keras's own default cache (read from KERAS_HOME when Keras was imported) points at the
    # empty one too, so that no regression can make the test touch the developer's ~/.keras.
    monkeypatch.setattr(keras.src.backend.config, "_KERAS_DIR", str(keras_home))
    monkeypatch.setattr(socket, "create_connection", only_localhost(socket.create_connection))
    monkeypatch.setenv("no_proxy", "127.0.0.1")  # a proxy in the environment must not see the requests
    with Mirror(files) as mirror:
        monkeypatch.setenv(cache.MIRROR_VARIABLE, mirror.url)
        yield OnlineBook(mirror, book_files, images, bccd_files, pbc, bccd)


def failure_message(stderr: str) -> str:
    """The one error prefetch printed, without its FAIL line (which names the file anyway)."""
    assert stderr.count("  FAIL ") == 1, stderr
    return stderr.split("  FAIL ", 1)[1].split("\n", 1)[1]


def test_prefetch_downloads_extracts_selects_verifies_and_caches_every_file(online_book, keras_home, capsys):
    assert prefetch.main([]) == 0

    out = capsys.readouterr().out
    assert f"Downloads from the mirror {online_book.mirror.url}" in out
    for book_file in online_book.book_files:
        assert f"ok   {book_file.cache_subdir}/{book_file.name}  (downloaded)" in out
        served = online_book.mirror.files[f"{book_file.cache_subdir}/{book_file.name}"]
        cached = keras_home / book_file.cache_subdir / book_file.name
        assert cache.cache_path(book_file) == cached, "where the chapters' Keras calls look"
        assert cached.read_bytes() == served
    pbc_dir = cache.image_set_dir(online_book.pbc)
    assert f"ok   {online_book.pbc.cache_subdir}/ ({len(SUBSET)} images)  (copied from " in out
    for path in SUBSET:
        assert (pbc_dir / path).read_bytes() == online_book.images[path]
    assert files_in(pbc_dir) == set(SUBSET), "only the images the hash list selects"
    assert files_in(keras_home) == online_book.full_cache(), "and nothing else (no partial file)"
    assert sorted(online_book.mirror.requests) == sorted(online_book.mirror.files), "each file once"
    assert "Every file is in the cache and verified." in out


def test_prefetch_copies_only_the_listed_crops_out_of_the_bccd_repository_archive(online_book, keras_home, capsys):
    assert prefetch.main(["--group", "bccd"]) == 0

    bccd_dir = cache.image_set_dir(online_book.bccd)
    out = capsys.readouterr().out
    assert f"ok   {online_book.bccd.cache_subdir}/ ({len(BCCD_CROPS)} images)  (copied from " in out
    for path in BCCD_CROPS:
        assert (bccd_dir / path).read_bytes() == online_book.bccd_files[f"BCCD_cropped/{path}"]
    assert files_in(bccd_dir) == set(BCCD_CROPS), "not the unlisted crop, not the README"
    assert online_book.mirror.requests == [BCCD_ARCHIVE]


def test_a_second_run_uses_the_cache_and_makes_no_request(online_book, capsys):
    assert prefetch.main([]) == 0
    requests_of_the_first_run = len(online_book.mirror.requests)
    capsys.readouterr()

    assert prefetch.main([]) == 0

    new_requests = online_book.mirror.requests[requests_of_the_first_run:]
    assert new_requests == [], f"the second run asked the server for {new_requests}"
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  ok ")]
    assert len(lines) == len(online_book.book_files) + 2  # and the two image sets
    assert all(line.endswith("(cached)") for line in lines), lines


@pytest.mark.parametrize("fault", ["cut off", "truncated", "altered"])
@pytest.mark.parametrize("path", [FASHION_IMAGES, WEIGHTS, ARCHIVE, BCCD_ARCHIVE])
def test_a_broken_response_is_refused_by_name_and_leaves_nothing_in_the_cache(
        online_book, keras_home, capsys, path, fault):
    online_book.mirror.faults[path] = fault

    assert prefetch.main([]) == 1

    message = failure_message(capsys.readouterr().err)
    assert Path(path).name in message
    assert files_in(keras_home) == online_book.full_cache() - online_book.products(path)
    # Nothing half-done stays to be reused: once the mirror serves the file intact, a new run takes it.
    del online_book.mirror.faults[path]
    assert prefetch.main([]) == 0
    assert files_in(keras_home) == online_book.full_cache()


def test_an_archive_holding_an_altered_image_is_refused_naming_the_image(online_book, keras_home, capsys):
    altered = dict(online_book.images, **{"ig/MY_6.jpg": jpeg_bytes(255, size=(36, 36))})
    online_book.mirror.files[ARCHIVE] = pbc_archive(altered)  # a valid zip, one image not the book's

    assert prefetch.main(["--group", "pbc"]) == 1

    message = failure_message(capsys.readouterr().err)
    assert "ig/MY_6.jpg" in message and hashlib.sha256(online_book.images["ig/MY_6.jpg"]).hexdigest() in message
    assert files_in(keras_home) == set(), "no image copied, the archive and its extraction deleted"


def test_a_cache_an_online_prefetch_filled_serves_as_the_mirror_for_another_machine(
        online_book, keras_home, tmp_path, monkeypatch):
    assert prefetch.main([]) == 0
    filled = {path: (keras_home / path).read_bytes() for path in files_in(keras_home)}
    other_machine = tmp_path / "other-machine-keras-home"
    monkeypatch.setenv("KERAS_HOME", str(other_machine))
    monkeypatch.setattr(keras.src.backend.config, "_KERAS_DIR", str(other_machine))

    with Mirror(filled) as workshop_mirror:  # what `python -m http.server` serves in that ~/.keras
        monkeypatch.setenv(cache.MIRROR_VARIABLE, workshop_mirror.url)
        assert prefetch.main([]) == 0

    assert files_in(other_machine) == files_in(keras_home)


@pytest.mark.parametrize("value", ["ftp://192.168.1.10/keras/", "192.168.1.10:8000", "http:///keras"])
def test_a_mirror_url_that_is_not_http_is_refused_naming_the_variable(keras_home, monkeypatch, capsys, value):
    monkeypatch.setenv(cache.MIRROR_VARIABLE, value)

    with pytest.raises(SystemExit) as exited:
        prefetch.main([])

    assert exited.value.code == 2
    assert f"{cache.MIRROR_VARIABLE}={value!r} is not the http:// or https:// URL" in capsys.readouterr().err
    assert not keras_home.exists()


def test_without_the_variable_every_download_comes_from_its_official_origin():
    assert [cache.book_file_url(f) for f in cache.BOOK_FILES] == [f.origin for f in cache.BOOK_FILES]
    assert [cache.archive_url(s) for s in cache.IMAGE_SETS] == [s.archive_origin for s in cache.IMAGE_SETS]
