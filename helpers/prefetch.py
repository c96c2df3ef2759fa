"""Fill the Keras cache with every file the book uses, verified by sha256.

    python -m helpers.prefetch                       # download what is missing
    python -m helpers.prefetch --from DIR [--from DIR ...]   # copy from local folders first
    python -m helpers.prefetch --from DIR --offline  # never touch the network

Folders that work with --from: Debian's /usr/share/datasets/fashion-mnist
(package dataset-fashion-mnist), the project's ../shared/assets (MobileNet
weights, pbc_subset/, bccd_wbc/), a workshop USB stick, or a copy of another machine's
~/.keras/datasets and ~/.keras/models. Exits 1, saying which file and what to do, when a file
cannot be had or a copy is corrupt.

Downloads come from the official origins, or from the mirror named by the
environment variable BOOK_MIRROR_URL when it is set (see helpers/cache.py).
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

from helpers.cache import (BOOK_FILES, IMAGE_SETS, MIRROR_VARIABLE,
                           ChecksumError, fetch, fetch_image_set,
                           image_set_hashes, keras_home, mirror_url)


def main(argv: list[str] | None = None) -> int:
    """Fetch every book file and image set; print one line for each; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m helpers.prefetch", description=__doc__.split("\n")[0])
    parser.add_argument("--from", dest="folders", action="append", default=[], type=Path,
                        metavar="DIR", help="a folder to copy files from before downloading (repeatable)")
    parser.add_argument("--offline", action="store_true", help="never download; fail if a file is not local")
    groups = list(dict.fromkeys(f.group for f in BOOK_FILES)) + [image_set.group for image_set in IMAGE_SETS]
    parser.add_argument("--group", action="append", default=None, choices=groups,
                        help="only this group (repeatable)")
    args = parser.parse_args(argv)

    print(f"Keras cache: {keras_home()}")
    if not args.offline:
        try:
            mirror = mirror_url()
        except ValueError as error:
            parser.error(str(error))  # exits 2 before any download
        if mirror:
            print(f"Downloads from the mirror {mirror} (${MIRROR_VARIABLE})")
    fetches = [(f.group, f"{f.cache_subdir}/{f.name}", partial(fetch, f)) for f in BOOK_FILES] + [
        (image_set.group, f"{image_set.cache_subdir}/ ({len(image_set_hashes(image_set)):,} images)",
         partial(fetch_image_set, image_set))
        for image_set in IMAGE_SETS
    ]
    failures = 0
    for group, label, fetch_one in fetches:
        if args.group and group not in args.group:
            continue
        try:
            how = fetch_one(args.folders, download=not args.offline)
            print(f"  ok   {label}  ({how})")
        except (ChecksumError, FileNotFoundError) as error:
            failures += 1
            print(f"  FAIL {label}\n       {error}", file=sys.stderr)
    print(f"{failures} file(s) missing or corrupt." if failures else "Every file is in the cache and verified.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
