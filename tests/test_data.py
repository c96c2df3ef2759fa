"""helpers.data and the image sets of helpers.cache (PBC, BCCD): real images in, leakage-free splits out."""

import dataclasses
import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from fakes import jpeg_bytes
from PIL import Image

from helpers import cache, data


@pytest.fixture()
def tiny_subset(tmp_path, monkeypatch):
    """A 3-image stand-in for the PBC subset: its hash list, a source folder and an empty Keras cache."""
    files = {"basophil/BA_1.jpg": jpeg_bytes(10), "ig/MY_2.jpg": jpeg_bytes(90), "ig/PMY_3.jpg": jpeg_bytes(200)}
    source = tmp_path / "assets" / "pbc_subset"
    lines = []
    for relative, content in files.items():
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        (source / relative).write_bytes(content)
        lines.append(f"{hashlib.sha256(content).hexdigest()}  {relative}")
    hash_list = tmp_path / "pbc_subset.sha256"
    hash_list.write_text("\n".join(lines) + "\n")
    stand_in = dataclasses.replace(cache.PBC, hash_list=hash_list)
    monkeypatch.setattr(cache, "PBC", stand_in)
    monkeypatch.setattr(data, "PBC", stand_in)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    return source


def test_fine_class_comes_from_the_file_name_prefix():
    assert data.fine_class("ig/MMY_123.jpg") == "metamyelocyte"
    assert data.fine_class("neutrophil/BNE_9.jpg") == "band neutrophil"
    assert data.fine_class("platelet/PLATELET_1.jpg") == "platelet"


def test_an_image_without_a_fine_label_is_refused_by_name():
    with pytest.raises(ValueError, match="IG_5.jpg"):
        data.fine_class("ig/IG_5.jpg")


def test_there_are_8_groups_and_11_fine_classes():
    assert len(data.GROUPS_8) == 8 and len(data.FINE_11) == 11


def test_decoding_keeps_the_centre_and_returns_uint8_rgb_of_the_asked_size():
    image = Image.new("RGB", (360, 363), (0, 0, 0))
    image.paste((255, 255, 255), (130, 131, 230, 231))  # a white 100-pixel square in the centre
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)

    decoded = data.decode_cell_image(buffer.getvalue(), image_size=50, crop=100)

    assert decoded.shape == (50, 50, 3) and decoded.dtype == np.uint8
    assert decoded[5:45, 5:45].mean() > 240, "the central crop should be the white square"


def test_split_keeps_byte_identical_copies_on_one_side_and_every_class_everywhere():
    files = np.array([f"basophil/BA_{i}.jpg" for i in range(40)] + [f"ig/MY_{i}.jpg" for i in range(40)])
    digests = np.array([f"h{i}" for i in range(80)])
    digests[[3, 50]] = "same"  # a copy across classes, as in the real data
    digests[[7, 8]] = "twin"

    part = data.split_without_leakage(files, digests, seed=1)

    assert part[3] == part[50] and part[7] == part[8]
    for prefix in ("basophil", "ig"):
        in_class = np.char.startswith(files, prefix)
        assert set(part[in_class]) == {0, 1, 2}
    assert np.isclose((part == 0).mean(), 0.8, atol=0.05)


def test_split_is_the_same_every_time():
    files = np.array([f"basophil/BA_{i}.jpg" for i in range(30)])
    digests = np.array([str(i) for i in range(30)])
    np.testing.assert_array_equal(data.split_without_leakage(files, digests),
                                  data.split_without_leakage(files, digests))


def test_labels_must_be_8_or_11():
    with pytest.raises(ValueError, match='"8" or "11"'):
        data.load_blood_cells(labels="10")


def test_prefetch_copies_the_subset_from_a_folder_and_verifies_it(tiny_subset):
    how = cache.fetch_pbc_subset([tiny_subset.parent], download=False)

    assert how == f"copied from {tiny_subset}"
    assert (cache.pbc_subset_dir() / "ig/MY_2.jpg").read_bytes() == (tiny_subset / "ig/MY_2.jpg").read_bytes()
    assert cache.fetch_pbc_subset([], download=False) == "cached"


def test_a_corrupt_image_in_the_source_is_refused_with_both_hashes(tiny_subset):
    (tiny_subset / "ig/MY_2.jpg").write_bytes(b"not a jpeg")

    with pytest.raises(cache.ChecksumError, match="MY_2.jpg") as raised:
        cache.fetch_pbc_subset([tiny_subset.parent], download=False)
    assert hashlib.sha256(b"not a jpeg").hexdigest() in str(raised.value)
    assert not (cache.pbc_subset_dir() / "ig/MY_2.jpg").exists()


def test_a_corrupt_cached_image_is_replaced(tiny_subset):
    cache.fetch_pbc_subset([tiny_subset.parent], download=False)
    (cache.pbc_subset_dir() / "basophil/BA_1.jpg").write_bytes(b"truncated")

    assert cache.fetch_pbc_subset([tiny_subset.parent], download=False).startswith("copied")


def test_missing_images_offline_say_how_many_where_and_the_command(tiny_subset, tmp_path):
    with pytest.raises(FileNotFoundError) as raised:
        cache.fetch_pbc_subset([tmp_path / "empty"], download=False)
    message = str(raised.value)
    assert "3 of the 3 PBC images are missing" in message
    assert "--offline" in message and cache.PREFETCH_COMMAND in message


def test_failed_archive_download_names_the_origin_and_the_fix(tiny_subset, monkeypatch):
    def no_network(image_set):
        raise Exception("URL fetch failure: no route to host")

    monkeypatch.setattr(cache, "_download_archive", no_network)
    with pytest.raises(FileNotFoundError, match="no route to host") as raised:
        cache.fetch_pbc_subset([], download=True)
    assert cache.PBC.archive_origin in str(raised.value)


def test_load_blood_cells_decodes_once_then_reads_the_cache(tiny_subset, monkeypatch):
    cache.fetch_pbc_subset([tiny_subset.parent], download=False)
    first = data.load_all_blood_cells(image_size=32, crop=64)

    monkeypatch.setattr(data, "_decode_all", lambda *args: pytest.fail("decoded twice"))
    images, files, digests = data.load_all_blood_cells(image_size=32, crop=64)

    assert images.shape == (3, 32, 32, 3)
    np.testing.assert_array_equal(images, first[0])
    assert list(files) == sorted(files)


def test_a_corrupt_decoded_cache_is_rebuilt(tiny_subset):
    cache.fetch_pbc_subset([tiny_subset.parent], download=False)
    data.load_all_blood_cells(image_size=32, crop=64)
    stored = data._decoded_cache_path(32, 64)
    stored.write_bytes(stored.read_bytes()[:100])

    images, _, _ = data.load_all_blood_cells(image_size=32, crop=64)
    assert images.shape == (3, 32, 32, 3)


def test_image_size_larger_than_the_crop_is_refused():
    with pytest.raises(ValueError, match="image_size <= crop"):
        data.load_all_blood_cells(image_size=128, crop=100)


def test_the_hash_list_in_the_repository_is_the_published_one():
    digest = hashlib.sha256(cache.PBC.hash_list.read_bytes()).hexdigest()
    assert digest == "b9ae60978b02133c7b9ca904ef6448e1a9f8188cc1e46ad5a3ae50187ddcde78"
    assert len(cache.image_set_hashes(cache.PBC)) == 10_592


PBC_COUNTS_TABLE = Path(__file__).resolve().parent.parent.parent / "shared" / "assets" / "pbc_full_counts.tsv"
PBC_COUNTS_SHA256 = "97eb5de2328c486abe98e96e5af6865380ba5c8af1625de9d4919774bef66c7f"  # MANIFEST.tsv


def test_the_full_dataset_counts_are_the_published_ones():
    if not PBC_COUNTS_TABLE.exists():
        pytest.skip(f"the counted file list {PBC_COUNTS_TABLE} is not beside this checkout")
    assert hashlib.sha256(PBC_COUNTS_TABLE.read_bytes()).hexdigest() == PBC_COUNTS_SHA256
    rows = [line.split("\t") for line in PBC_COUNTS_TABLE.read_text().splitlines()[1:]]
    labelled = {fine: int(images) for group, prefix, fine, images in rows if fine != "(no fine label)"}
    unlabelled = {group: int(images) for group, prefix, fine, images in rows if fine == "(no fine label)"}
    assert data.PBC_FULL_COUNTS == labelled
    assert data.PBC_FULL_UNLABELLED == unlabelled
    assert sum(labelled.values()) + sum(unlabelled.values()) == 17092  # Acevedo et al. 2020, Table 1
    assert set(data.PBC_FULL_COUNTS) == set(data.FINE_11.values())


@pytest.fixture()
def tiny_bccd(tmp_path, monkeypatch):
    """A 3-crop stand-in for the BCCD set, crops of different sizes: the set expecting them, and its source folder."""
    files = {"Basophil/BloodImage_00008_1.jpg": jpeg_bytes(10, size=(50, 61)),
             "Neutrophil/BloodImage_00001_1.jpg": jpeg_bytes(90, size=(72, 64)),
             "Neutrophil/BloodImage_00002_1.jpg": jpeg_bytes(200, size=(40, 45))}
    source = tmp_path / "assets" / "bccd_wbc"
    for relative, content in files.items():
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        (source / relative).write_bytes(content)
    hash_list = tmp_path / "bccd_wbc.sha256"
    hash_list.write_text("".join(f"{hashlib.sha256(c).hexdigest()}  {r}\n" for r, c in files.items()))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    return dataclasses.replace(cache.BCCD, hash_list=hash_list), source


def test_the_bccd_crops_are_copied_from_a_folder_and_verified(tiny_bccd):
    bccd, source = tiny_bccd

    assert cache.fetch_image_set(bccd, [source.parent], download=False) == f"copied from {source}"
    copied = cache.image_set_dir(bccd) / "Neutrophil/BloodImage_00001_1.jpg"
    assert copied.read_bytes() == (source / "Neutrophil/BloodImage_00001_1.jpg").read_bytes()
    assert cache.fetch_image_set(bccd, [], download=False) == "cached"


def test_a_corrupt_bccd_crop_is_refused_naming_it_and_both_hashes_and_nothing_is_copied(tiny_bccd):
    bccd, source = tiny_bccd
    bad = source / "Neutrophil/BloodImage_00002_1.jpg"
    expected = hashlib.sha256(bad.read_bytes()).hexdigest()
    bad.write_bytes(b"not a jpeg")

    with pytest.raises(cache.ChecksumError) as raised:
        cache.fetch_image_set(bccd, [source.parent], download=False)

    message = str(raised.value)
    assert str(bad) in message and expected in message and hashlib.sha256(b"not a jpeg").hexdigest() in message
    folder = cache.image_set_dir(bccd)
    assert not folder.exists() or not any(p.is_file() for p in folder.rglob("*")), "all or nothing"


def test_missing_bccd_crops_offline_say_how_many_where_it_looked_and_the_command(tiny_bccd, tmp_path):
    bccd, _ = tiny_bccd

    with pytest.raises(FileNotFoundError) as raised:
        cache.fetch_image_set(bccd, [tmp_path / "empty"], download=False)

    message = str(raised.value)
    assert "3 of the 3 BCCD white-cell images are missing" in message
    assert str(tmp_path / "empty" / "bccd_wbc") in message and "Neutrophil/" in message
    assert "--offline" in message and f"{cache.PREFETCH_COMMAND} --from FOLDER" in message


def test_load_bccd_cells_keeps_each_crop_at_its_own_size_labelled_by_its_folder(tiny_bccd, monkeypatch):
    bccd, source = tiny_bccd
    cache.fetch_image_set(bccd, [source.parent], download=False)
    monkeypatch.setattr(data, "BCCD", bccd)

    cells = data.load_bccd_cells()

    assert cells.class_names == ("Basophil", "Eosinophil", "Lymphocyte", "Monocyte", "Neutrophil")
    assert cells.files == tuple(sorted(cells.files))
    assert [cells.class_names[label] for label in cells.labels] == [Path(f).parent.name for f in cells.files]
    assert cells.labels.dtype == np.int64
    assert [image.shape for image in cells.images] == [(61, 50, 3), (64, 72, 3), (45, 40, 3)]
    assert all(image.dtype == np.uint8 for image in cells.images)


def test_the_bccd_hash_list_in_the_repository_lists_its_351_crops_in_five_folders():
    digest = hashlib.sha256(cache.BCCD.hash_list.read_bytes()).hexdigest()
    assert digest == "55543524a314304c0bc515aacb67fe6494c85d76ed16dc3393146c5eeda7563d"  # MANIFEST.tsv
    folders = [Path(relative).parent.name for relative in cache.image_set_hashes(cache.BCCD)]
    counts = {name: folders.count(name) for name in data.BCCD_CLASSES}
    assert counts == {"Basophil": 3, "Eosinophil": 88, "Lymphocyte": 33, "Monocyte": 20, "Neutrophil": 207}
    assert len(folders) == 351
