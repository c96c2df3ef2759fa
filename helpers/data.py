"""The PBC blood-cell images as arrays: decoded once, cached, split without leakage; and BCCD's white cells.

Chapter 03 shows the reader's own route first (`keras.utils.image_dataset_from_directory`
on the folder); this helper is the fast route every later chapter takes. The
BCCD white-cell crops (another lab's smears) are returned whole, each at its own
size, for chapter 05's look at a shift of domain.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers.cache import (BCCD, PBC, fetch_image_set, image_set_dir,
                           image_set_hashes, keras_home)

# The 8 groups are the dataset's folders; the 11 fine classes are the file-name
# prefixes inside them, in the order a haematologist lists them.
GROUPS_8 = ("basophil", "eosinophil", "erythroblast", "ig", "lymphocyte",
            "monocyte", "neutrophil", "platelet")
FINE_11 = {  # file-name prefix -> class name
    "BA": "basophil", "EO": "eosinophil", "ERB": "erythroblast",
    "PMY": "promyelocyte", "MY": "myelocyte", "MMY": "metamyelocyte",
    "LY": "lymphocyte", "MO": "monocyte",
    "BNE": "band neutrophil", "SNE": "segmented neutrophil", "PLATELET": "platelet",
}
# Images per fine class in the whole PBC dataset, 17,092 images (Acevedo et al., Data in Brief 30,
# 2020: its Table 1 gives the eight folder totals), split inside ig and neutrophil by file-name
# prefix, counted from the dataset's file list (../shared/assets/pbc_full_counts.tsv, whose origin
# MANIFEST.tsv names; tests/test_data.py checks the two agree). 151 ig and 50 neutrophil images
# carry no finer prefix and are left out. The book's subset is balanced; these are not.
PBC_FULL_COUNTS = {
    "basophil": 1218, "eosinophil": 3117, "erythroblast": 1551,
    "promyelocyte": 592, "myelocyte": 1137, "metamyelocyte": 1015,
    "lymphocyte": 1214, "monocyte": 1420,
    "band neutrophil": 1633, "segmented neutrophil": 1646, "platelet": 2348,
}
PBC_FULL_UNLABELLED = {"ig": 151, "neutrophil": 50}  # images without a fine-class prefix
# The five white-cell classes of BCCD, its folder names, sorted.
BCCD_CLASSES = ("Basophil", "Eosinophil", "Lymphocyte", "Monocyte", "Neutrophil")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)  # train, validation, test
SPLIT_SEED = 2020


@dataclass(frozen=True)
class BloodCells:
    """The split PBC subset: uint8 RGB images (N, size, size, 3), integer labels, and names."""

    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    train_files: tuple[str, ...]
    val_files: tuple[str, ...]
    test_files: tuple[str, ...]


@dataclass(frozen=True)
class BccdCells:
    """The BCCD white-cell crops: uint8 RGB images, each at its own size, with integer labels and names."""

    images: tuple[np.ndarray, ...]
    class_names: tuple[str, ...]
    labels: np.ndarray
    files: tuple[str, ...]


def fine_class(relative_path: str) -> str:
    """The 11-class name of an image from its file name ("ig/MMY_123.jpg" -> "metamyelocyte")."""
    prefix = Path(relative_path).name.split("_")[0]
    if prefix not in FINE_11:
        raise ValueError(f"{relative_path}: file-name prefix {prefix!r} is not one of {sorted(FINE_11)}.")
    return FINE_11[prefix]


def decode_cell_image(data: bytes, image_size: int, crop: int) -> np.ndarray:
    """Decode one JPEG, keep its central `crop` x `crop` pixels, resize to `image_size` (uint8 RGB)."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (image.width * image_size // crop, image.height * image_size // crop))
        image = image.convert("RGB")
        scale = image.width / 360  # draft mode may have decoded at 1/2 or 1/4 scale
        side = round(crop * scale)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side))
        return np.asarray(image.resize((image_size, image_size), Image.Resampling.BILINEAR, reducing_gap=2.0))


def _decoded_cache_path(image_size: int, crop: int) -> Path:
    list_digest = hashlib.sha256(PBC.hash_list.read_bytes()).hexdigest()[:12]
    return keras_home() / "datasets" / "pbc_subset_decoded" / f"pbc_{image_size}px_crop{crop}_{list_digest}.npz"


def _decode_all(image_size: int, crop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode every image of the subset, after fetch_image_set has verified each file's sha256."""
    fetch_image_set(PBC)  # verifies every image; raises with the fix when one is missing or corrupt
    folder = image_set_dir(PBC)
    expected = image_set_hashes(PBC)
    files = sorted(expected)
    images = np.empty((len(files), image_size, image_size, 3), dtype=np.uint8)
    for index, relative in enumerate(files):
        images[index] = decode_cell_image((folder / relative).read_bytes(), image_size, crop)
    return images, np.array(files), np.array([expected[f] for f in files])


def load_all_blood_cells(image_size: int = 96, crop: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every image of the subset as (images, relative paths, sha256s), from the decoded cache if present."""
    if not 32 <= image_size <= 360 or not image_size <= crop <= 360:
        raise ValueError(f"Need 32 <= image_size <= crop <= 360 pixels; got image_size={image_size}, crop={crop}.")
    cache = _decoded_cache_path(image_size, crop)
    if cache.exists():
        try:
            with np.load(cache) as stored:  # zip members carry CRCs: corruption raises here
                return stored["images"], stored["files"], stored["sha256"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            cache.unlink()  # corrupt: decode again
    images, files, digests = _decode_all(image_size, crop)
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(".partial.npz")
    np.savez(partial, images=images, files=files, sha256=digests)
    partial.replace(cache)
    return images, files, digests


def split_without_leakage(files: np.ndarray, digests: np.ndarray, seed: int = SPLIT_SEED) -> np.ndarray:
    """Assign each image to 0 (train), 1 (validation) or 2 (test), stratified by fine class.

    Byte-identical images (same sha256) always land in the same part, so no
    test image has a copy in training.
    """
    rng = np.random.default_rng(seed)
    members: dict[str, list[int]] = {}  # sha256 -> indices of the images with that content
    for index, digest in enumerate(digests):
        members.setdefault(str(digest), []).append(index)
    part = np.full(len(files), -1)
    for name in FINE_11.values():  # a group of copies counts once, under its first file's class
        groups = sorted(d for d, indices in members.items() if fine_class(str(files[indices[0]])) == name)
        cut_train = round(SPLIT_FRACTIONS[0] * len(groups))
        cut_val = cut_train + round(SPLIT_FRACTIONS[1] * len(groups))
        for rank, group_index in enumerate(rng.permutation(len(groups))):
            part[members[groups[group_index]]] = 0 if rank < cut_train else 1 if rank < cut_val else 2
    return part


def load_blood_cells(labels: str = "8", image_size: int = 96, crop: int = 200) -> BloodCells:
    """The PBC subset split 80/10/10 (fixed seed, stratified, copies kept together); taught in chapter 03.

    Args:
        labels: "8" for the dataset's 8 groups (its folders), "11" for the fine
            classes in the file names (ig and neutrophil split by maturation).
        image_size: side of the square images returned, in pixels.
        crop: side of the central square kept from the 360-pixel field before
            resizing (the cell sits in the centre).
    """
    if labels not in ("8", "11"):
        raise ValueError(f'labels must be "8" or "11"; got {labels!r}.')
    images, files, digests = load_all_blood_cells(image_size, crop)
    if labels == "8":
        class_names = GROUPS_8
        names = [Path(f).parent.name for f in files]
    else:
        class_names = tuple(FINE_11.values())
        names = [fine_class(f) for f in files]
    label_ids = np.array([class_names.index(n) for n in names], dtype=np.int64)
    part = split_without_leakage(files, digests)
    pieces = {}
    for number, prefix in enumerate(("train", "val", "test")):
        chosen = part == number
        pieces[f"{prefix}_images"] = images[chosen]
        pieces[f"{prefix}_labels"] = label_ids[chosen]
        pieces[f"{prefix}_files"] = tuple(files[chosen].tolist())
    return BloodCells(class_names=class_names, **pieces)


def load_bccd_cells() -> BccdCells:
    """Every BCCD white-cell crop, verified, decoded at its own size, labelled by its folder; taught in chapter 05."""
    from PIL import Image

    fetch_image_set(BCCD)  # verifies every crop; raises with the fix when one is missing or corrupt
    folder = image_set_dir(BCCD)
    files = tuple(sorted(image_set_hashes(BCCD)))
    images = []
    for relative in files:
        with Image.open(folder / relative) as image:
            images.append(np.asarray(image.convert("RGB")))
    labels = np.array([BCCD_CLASSES.index(Path(relative).parent.name) for relative in files], dtype=np.int64)
    return BccdCells(images=tuple(images), class_names=BCCD_CLASSES, labels=labels, files=files)
