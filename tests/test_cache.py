"""helpers.cache and helpers.prefetch: the Keras cache holds only verified files."""

import dataclasses
import gzip
import hashlib
from pathlib import Path

import pytest
from fakes import jpeg_bytes

from helpers import cache, prefetch

CONTENT = b"\x00\x00\x08\x01" + bytes(range(200))


def make_book_file(tmp_path: Path, name: str = "labels-idx1-ubyte.gz") -> cache.BookFile:
    """A small stand-in for a book file; its hash is of the decompressed content, like the real ones."""
    return cache.BookFile(
        group="tiny",
        name=name,
        cache_subdir="datasets/tiny",
        origin="https://example.invalid/" + name,
        sha256=hashlib.sha256(CONTENT).hexdigest(),
    )


def write_gz(folder: Path, name: str, content: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(gzip.compress(content))
    return path


def test_good_local_copy_is_copied_into_the_keras_cache_and_verified(tmp_path, keras_home):
    book_file = make_book_file(tmp_path)
    write_gz(tmp_path / "usb", book_file.name, CONTENT)

    how = cache.fetch(book_file, [tmp_path / "usb"], download=False)

    assert how == f"copied from {tmp_path / 'usb'}"
    assert (keras_home / "datasets/tiny" / book_file.name).is_file()
    assert cache.fetch(book_file, [], download=False) == "cached"


def test_recompressed_copy_with_the_same_content_is_accepted(tmp_path, keras_home):
    book_file = make_book_file(tmp_path)
    source = tmp_path / "debian" / book_file.name
    source.parent.mkdir()
    source.write_bytes(gzip.compress(CONTENT, compresslevel=1, mtime=12345))

    assert cache.fetch(book_file, [source.parent], download=False).startswith("copied")


def test_local_copy_in_a_subfolder_named_like_the_cache_folder_is_found(tmp_path, keras_home):
    book_file = make_book_file(tmp_path)
    write_gz(tmp_path / "stick" / "tiny", book_file.name, CONTENT)

    assert cache.fetch(book_file, [tmp_path / "stick"], download=False).startswith("copied")


def test_corrupt_local_copy_is_refused_naming_file_both_hashes_and_fix(tmp_path, keras_home):
    book_file = make_book_file(tmp_path)
    bad = write_gz(tmp_path / "usb", book_file.name, CONTENT[:-1] + b"X")

    with pytest.raises(cache.ChecksumError) as raised:
        cache.fetch(book_file, [tmp_path / "usb"], download=False)

    message = str(raised.value)
    assert str(bad) in message
    assert book_file.sha256 in message
    assert hashlib.sha256(CONTENT[:-1] + b"X").hexdigest() in message
    assert cache.PREFETCH_COMMAND in message
    cached = keras_home / "datasets/tiny"
    assert not cached.exists() or not any(cached.iterdir()), "nothing corrupt may stay in the cache"


def test_truncated_gzip_is_refused_not_crashing(tmp_path, keras_home):
    book_file = make_book_file(tmp_path)
    good = write_gz(tmp_path / "usb", book_file.name, CONTENT)
    good.write_bytes(good.read_bytes()[:20])

    with pytest.raises(cache.ChecksumError, match="unreadable"):
        cache.fetch(book_file, [tmp_path / "usb"], download=False)


def test_corrupt_file_already_in_the_cache_is_deleted_and_replaced(tmp_path, keras_home):
    book_file = make_book_file(tmp_path)
    write_gz(keras_home / "datasets/tiny", book_file.name, b"not the data")
    write_gz(tmp_path / "usb", book_file.name, CONTENT)

    assert cache.fetch(book_file, [tmp_path / "usb"], download=False).startswith("copied")
    cache.verify(keras_home / "datasets/tiny" / book_file.name, book_file)


def test_corrupt_file_in_the_cache_with_no_good_copy_is_removed_and_reported_missing(tmp_path, keras_home):
    book_file = make_book_file(tmp_path)
    write_gz(keras_home / "datasets/tiny", book_file.name, b"not the data")

    with pytest.raises(FileNotFoundError):
        cache.fetch(book_file, [], download=False)
    assert not (keras_home / "datasets/tiny" / book_file.name).exists()


def test_missing_file_offline_says_which_file_where_it_looked_and_the_command(tmp_path, keras_home):
    book_file = make_book_file(tmp_path)

    with pytest.raises(FileNotFoundError) as raised:
        cache.fetch(book_file, [tmp_path / "usb"], download=False)

    message = str(raised.value)
    assert "datasets/tiny/labels-idx1-ubyte.gz is missing" in message
    assert str(keras_home / "datasets/tiny" / book_file.name) in message
    assert str(tmp_path / "usb" / book_file.name) in message
    assert cache.PREFETCH_COMMAND in message


def test_failed_download_says_which_file_and_the_command(tmp_path, keras_home, monkeypatch):
    book_file = make_book_file(tmp_path)

    def no_network(_):
        raise Exception("URL fetch failure: network is unreachable")

    monkeypatch.setattr(cache, "_download", no_network)
    with pytest.raises(FileNotFoundError, match="network is unreachable") as raised:
        cache.fetch(book_file, [], download=True)
    assert book_file.origin in str(raised.value)


def test_corrupt_download_is_deleted(tmp_path, keras_home, monkeypatch):
    book_file = make_book_file(tmp_path)

    def corrupt_download(entry):
        return write_gz(keras_home / entry.cache_subdir, entry.name, b"tampered")

    monkeypatch.setattr(cache, "_download", corrupt_download)
    with pytest.raises(cache.ChecksumError):
        cache.fetch(book_file, [], download=True)
    assert not (keras_home / "datasets/tiny" / book_file.name).exists()


def test_unknown_group_names_the_known_ones():
    with pytest.raises(ValueError, match="fashion-mnist"):
        cache.files_in_group("imagenet")


def test_every_book_file_has_a_sha256_and_an_https_origin():
    for book_file in cache.BOOK_FILES:
        assert len(book_file.sha256) == 64 and int(book_file.sha256, 16) >= 0, book_file
        assert book_file.origin.startswith("https://"), book_file


def test_prefetch_command_exits_1_and_explains_when_a_file_is_missing(tmp_path, keras_home, capsys):
    status = prefetch.main(["--offline", "--group", "fashion-mnist", "--from", str(tmp_path)])

    assert status == 1
    assert "train-images-idx3-ubyte.gz is missing" in capsys.readouterr().err


def test_prefetch_command_fills_the_cache_from_a_folder(tmp_path, keras_home, capsys, monkeypatch):
    book_file = make_book_file(tmp_path)
    monkeypatch.setattr(prefetch, "BOOK_FILES", (book_file,))
    write_gz(tmp_path / "usb", book_file.name, CONTENT)

    assert prefetch.main(["--offline", "--group", "tiny", "--from", str(tmp_path / "usb")]) == 0
    assert "Every file is in the cache and verified." in capsys.readouterr().out


def test_prefetch_fills_only_the_image_set_asked_for(tmp_path, keras_home, capsys, monkeypatch):
    image_sets = []
    for image_set, relative in ((cache.PBC, "basophil/BA_1.jpg"), (cache.BCCD, "Neutrophil/BloodImage_00001_1.jpg")):
        content = jpeg_bytes(len(image_sets) * 100, size=(20, 20))
        source = tmp_path / "usb" / Path(image_set.cache_subdir).name / relative
        source.parent.mkdir(parents=True)
        source.write_bytes(content)
        hash_list = tmp_path / f"{image_set.group}.sha256"
        hash_list.write_text(f"{hashlib.sha256(content).hexdigest()}  {relative}\n")
        image_sets.append(dataclasses.replace(image_set, hash_list=hash_list))
    monkeypatch.setattr(prefetch, "IMAGE_SETS", tuple(image_sets))

    assert prefetch.main(["--offline", "--group", "bccd", "--from", str(tmp_path / "usb")]) == 0

    assert "ok   datasets/bccd_wbc/ (1 images)  (copied from " in capsys.readouterr().out
    assert (keras_home / "datasets/bccd_wbc/Neutrophil/BloodImage_00001_1.jpg").is_file()
    assert not (keras_home / "datasets/pbc_subset").exists()


def test_prefetch_refuses_an_unknown_group_naming_the_known_ones(keras_home, capsys):
    with pytest.raises(SystemExit) as exited:
        prefetch.main(["--offline", "--group", "bcdd"])

    assert exited.value.code == 2
    assert "'bccd'" in capsys.readouterr().err and not keras_home.exists()
