"""Receipts: the record that a chapter passed on a backend, keyed by everything that run depended on.

The JAX pass re-executes the Keras chapters on `KERAS_BACKEND=jax`. On a CPU it takes several
times the TensorFlow pass (XLA:CPU's depthwise convolutions; see README, *Backends*), so the test
command caches its results by their inputs, as build systems cache test results: after a chapter
passes on JAX, a receipt is written to `tests/receipts/jax.json` (committed with the chapter), and
a later run skips a chapter whose receipt names exactly its current inputs. Any change to the
chapter's source, to the chapter that trains a shared model it loads, to `helpers/`, to the
tools that execute it, to the pinned packages, or a different Python or platform makes the
receipt stale and the chapter runs again.
`python3 book.py test --all-backends` ignores receipts. The TensorFlow pass never uses them.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What a chapter's run depends on besides its own source (paths relative to ROOT).
SHARED_INPUTS = {
    "helpers": ("helpers",),
    "tools": ("tools/notebooks.py", "tools/receipts.py", "tools/ipython/profile_default/ipython_kernel_config.py",
              "conftest.py"),
    "packages": ("constraints.txt", "pyproject.toml"),
}


def _files_under(relative: str, root: Path) -> list[Path]:
    """The file `relative`, or every file below the folder `relative` (no caches), sorted."""
    path = root / relative
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def digest(paths: tuple[str, ...], root: Path = ROOT) -> str:
    """sha256 over the names and contents of the files at `paths` (files or folders) under `root`."""
    hasher = hashlib.sha256()
    for relative in paths:
        for file in _files_under(relative, root):
            hasher.update(file.relative_to(root).as_posix().encode() + b"\0")
            hasher.update(hashlib.sha256(file.read_bytes()).digest())
    return hasher.hexdigest()


def model_makers(source: Path, root: Path = ROOT) -> tuple[str, ...]:
    """The chapters that save the book's shared models or values, when `source` loads one (else none).

    A chapter that calls `load_book_model` or `load_book_values` (helpers/book_models.py) runs
    on what another chapter saved with `save_book_model` or `save_book_values`: its result
    depends on that chapter too.
    """
    if not _calls(source, "load_book_model(", "load_book_values("):
        return ()
    return tuple(sorted(other.relative_to(root).as_posix()
                        for other in source.parent.glob("[0-9][0-9]_*.md")
                        if other != source and _calls(other, "save_book_model(", "save_book_values(")))


def _calls(source: Path, *names: str) -> bool:
    """Whether the text of `source` contains any of `names`."""
    text = source.read_text()
    return any(name in text for name in names)


def chapter_inputs(source: Path, root: Path = ROOT) -> dict[str, str]:
    """Everything the run of chapter `source` (.md) depends on, each as a short fingerprint."""
    inputs = {"chapter": digest((source.relative_to(root).as_posix(),), root)[:16]}
    makers = model_makers(source, root)
    if makers:
        inputs["models"] = digest(makers, root)[:16]
    inputs.update({name: digest(paths, root)[:16] for name, paths in SHARED_INPUTS.items()})
    inputs["python"] = f"{sys.version_info.major}.{sys.version_info.minor}"
    inputs["platform"] = f"{platform.system()}-{platform.machine()}"
    return inputs


def receipts_path(backend: str, root: Path = ROOT) -> Path:
    """Where the receipts of `backend`'s pass live."""
    return root / "tests" / "receipts" / f"{backend}.json"


def load(path: Path) -> dict[str, dict]:
    """The receipts in `path`, by chapter name (empty when there is no file yet)."""
    return json.loads(path.read_text()) if path.exists() else {}


def stale_inputs(receipt: dict | None, inputs: dict[str, str]) -> list[str]:
    """Which of `inputs` differ from what `receipt` was made with (all of them when there is none)."""
    if receipt is None:
        return list(inputs)
    made_with = receipt.get("inputs", {})
    return [name for name in inputs if made_with.get(name) != inputs[name]]


def record(path: Path, chapter: str, inputs: dict[str, str], seconds: float,
           headline: dict | None) -> dict:
    """Write (or replace) the receipt that `chapter` passed with `inputs`; return it."""
    receipts = load(path)
    receipts[chapter] = {
        "inputs": inputs,
        "passed": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(seconds, 1),
        "headline": headline,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(sorted(receipts.items())), indent=2) + "\n")
    return receipts[chapter]
