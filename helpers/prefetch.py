"""Fill the Keras cache with every file the book uses, verified by sha256.

    python -m helpers.prefetch                       # download what is missing
    python -m helpers.prefetch --from DIR [--from DIR ...]   # copy from local folders first
    python -m helpers.prefetch --from DIR --offline  # never touch the network

Folders that work with --from: Debian's /usr/share/datasets/fashion-mnist
(package dataset-fashion-mnist), the project's ../shared/assets (MobileNet
weights, pbc_subset/), a workshop USB stick, or a copy of another machine's
~/.keras/datasets and ~/.keras/models. Exits 1, saying which file and what to do, when a file
cannot be had or a copy is corrupt.

Downloads come from the official origins, or from the mirror named by the
environment variable BOOK_MIRROR_URL when it is set (see helpers/cache.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from helpers.cache import (BOOK_FILES, MIRROR_VARIABLE, PBC_SUBSET_SUBDIR,
                           ChecksumError, fetch, fetch_pbc_subset, keras_home,
                           mirror_url, pbc_subset_hashes)


def main(argv: list[str] | None = None) -> int:
    """Fetch every book file; print one line per file; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m helpers.prefetch", description=__doc__.split("\n")[0])
    parser.add_argument("--from", dest="folders", action="append", default=[], type=Path,
                        metavar="DIR", help="a folder to copy files from before downloading (repeatable)")
    parser.add_argument("--offline", action="store_true", help="never download; fail if a file is not local")
    parser.add_argument("--group", action="append", default=None,
                        help="only this group: fashion-mnist, mobilenet or pbc (repeatable)")
    args = parser.parse_args(argv)

    print(f"Keras cache: {keras_home()}")
    if not args.offline:
        try:
            mirror = mirror_url()
        except ValueError as error:
            parser.error(str(error))  # exits 2 before any download
        if mirror:
            print(f"Downloads from the mirror {mirror} (${MIRROR_VARIABLE})")
    failures = 0
    for book_file in BOOK_FILES:
        if args.group and book_file.group not in args.group:
            continue
        label = f"{book_file.cache_subdir}/{book_file.name}"
        try:
            how = fetch(book_file, args.folders, download=not args.offline)
            print(f"  ok   {label}  ({how})")
        except (ChecksumError, FileNotFoundError) as error:
            failures += 1
            print(f"  FAIL {label}\n       {error}", file=sys.stderr)
    if not args.group or "pbc" in args.group:
        label = f"{PBC_SUBSET_SUBDIR}/ ({len(pbc_subset_hashes()):,} images)"
        try:
            how = fetch_pbc_subset(args.folders, download=not args.offline)
            print(f"  ok   {label}  ({how})")
        except (ChecksumError, FileNotFoundError) as error:
            failures += 1
            print(f"  FAIL {label}\n       {error}", file=sys.stderr)
    print(f"{failures} file(s) missing or corrupt." if failures else "Every file is in the cache and verified.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
