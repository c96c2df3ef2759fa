"""The book's trained models: made once by the chapter that teaches them, shared with later chapters.

Chapter 04 (fine-tuning) ends with two trained networks that later chapters
start from. It saves them with `save_book_model` as ordinary `.keras` files in
the Keras cache (`$KERAS_HOME/models/keras_soup_to_nuts/`), each beside a small
JSON note: which chapter made it, a fingerprint of that chapter's code, and
the file's sha256. `load_book_model(name)` checks the note and loads the file.

A chapter may also choose numbers *for* a book model (chapter 05 chooses the
confidence below which the 8-class model's calls go to a person): it saves
them with `save_book_values`, and `load_book_values(name)` reads them back,
checking that they were chosen by the current chapter for the current model.

When the file is missing, was made by another version of its chapter, or its
bytes no longer match the note (a damaged file), `load_book_model` says so and
makes the model again by running the chapter itself, headlessly, on a fresh
kernel: the recipe lives in one place, the chapter. That is what happens when
a reader opens a later chapter first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import keras

from helpers.cache import content_sha256, keras_home

# The repository's chapters folder (the book runs from a checkout: see README, *Running it*).
CHAPTERS = Path(__file__).resolve().parent.parent / "chapters"
# Set to "off" by runs that change a chapter (the seed sweep), so they never replace the book's models.
SAVE_VARIABLE = "BOOK_SHARED_MODELS"


@dataclass(frozen=True)
class BookModel:
    """A trained model one chapter makes and later chapters load."""

    chapter: str  # the stem of the chapter that makes it, e.g. "04_fine_tuning"
    description: str


BOOK_MODELS: dict[str, BookModel] = {
    "blood_cells_8": BookModel("04_fine_tuning", "fine-tuned MobileNet, 8 blood-cell classes"),
    "blood_cells_11": BookModel("04_fine_tuning", "fine-tuned MobileNet, 11 blood-cell classes"),
}


@dataclass(frozen=True)
class BookValues:
    """Numbers one chapter chooses for a book model, which later chapters read (e.g. a threshold)."""

    chapter: str  # the stem of the chapter that chooses them
    model: str  # the book model they were chosen for
    description: str


BOOK_VALUES: dict[str, BookValues] = {
    "blood_cells_8_referral": BookValues(
        "05_in_the_clinic", "blood_cells_8",
        "confidence below which blood_cells_8's calls go to a person (keeps 90% of PBC validation)"),
}


class BookModelError(RuntimeError):
    """A book model could not be loaded or made."""


def models_dir() -> Path:
    """Where the book's models live: a folder of the Keras cache."""
    return keras_home() / "models" / "keras_soup_to_nuts"


def model_path(name: str) -> Path:
    """The `.keras` file of the book model `name`."""
    if name not in BOOK_MODELS:
        _entry(name)  # the KeyError that lists the names
        raise KeyError(f"{name!r} names saved values, not a model: use load_book_values({name!r}).")
    return models_dir() / f"{name}.keras"


def values_path(name: str) -> Path:
    """The JSON file of the book values `name`."""
    if name not in BOOK_VALUES:
        _entry(name)
        raise KeyError(f"{name!r} names a model, not saved values: use load_book_model({name!r}).")
    return models_dir() / f"{name}.values.json"


def _note_path(name: str) -> Path:
    return model_path(name).with_suffix(".json")


def _entry(name: str) -> BookModel | BookValues:
    if name in BOOK_MODELS:
        return BOOK_MODELS[name]
    if name in BOOK_VALUES:
        return BOOK_VALUES[name]
    raise KeyError(f"{name!r} is not one of the book's models ({', '.join(BOOK_MODELS)}) "
                   f"or saved values ({', '.join(BOOK_VALUES)}).")


def chapter_source(name: str) -> Path:
    """The chapter source (.md) that makes the book model (or values) `name`."""
    source = CHAPTERS / f"{_entry(name).chapter}.md"
    if not source.exists():
        raise BookModelError(
            f"The book model {name!r} is made by {source.name}, which is not at {source}. "
            f"Run the book from a checkout of its repository (README, *Running it*).")
    return source


def chapter_fingerprint(source: Path) -> str:
    """sha256 of a chapter's code cells, in order: prose edits do not change it, code edits do."""
    import jupytext  # imported here: only making or checking a model needs it

    notebook = jupytext.read(source)
    hasher = hashlib.sha256()
    for cell in notebook.cells:
        if cell.cell_type == "code":
            hasher.update(cell.source.strip().encode() + b"\0")
    return hasher.hexdigest()


def save_book_model(model: keras.Model, name: str) -> Path | None:
    """Save `model` as the book model `name`, with its note; return the path (None when saving is off)."""
    source = chapter_source(name)
    if os.environ.get(SAVE_VARIABLE) == "off":
        print(f"{name}: not saved ({SAVE_VARIABLE}=off: this run changes {source.name})")
        return None
    path = model_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial.keras")
    model.save(partial)
    note = {
        "name": name,
        "description": BOOK_MODELS[name].description,
        "chapter": source.name,
        "chapter_fingerprint": chapter_fingerprint(source),
        "sha256": content_sha256(partial),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "saved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    partial.replace(path)
    _note_path(name).write_text(json.dumps(note, indent=2) + "\n")
    return path


def why_not_current(name: str) -> str | None:
    """Why the saved book model `name` cannot be used as it is, or None when it can."""
    path, note_path = model_path(name), _note_path(name)
    if not path.exists():
        return f"it is not in the Keras cache ({path})"
    if not note_path.exists():
        return f"{path} has no note beside it ({note_path.name}) saying what made it"
    try:
        note = json.loads(note_path.read_text())
        expected_sha256, made_by = note["sha256"], note["chapter_fingerprint"]
    except (ValueError, KeyError) as error:
        return f"its note {note_path} is unreadable ({error})"
    if content_sha256(path) != expected_sha256:
        return f"{path} is damaged: its sha256 is not the one recorded when it was saved"
    if made_by != chapter_fingerprint(chapter_source(name)):
        return f"it was made by another version of {chapter_source(name).name}"
    return None


def load_book_model(name: str, make: bool = True) -> keras.Model:
    """Load the book model `name`; make it first by running its chapter when it is missing or stale."""
    _make_if_needed(name, why_not_current, model_path, "save_book_model", make)
    return keras.models.load_model(model_path(name))


def save_book_values(values: dict[str, float], name: str) -> Path | None:
    """Save `values`, chosen for a book model, as the book values `name`; return the path (None when off)."""
    entry, source = BOOK_VALUES[name], chapter_source(name)
    if os.environ.get(SAVE_VARIABLE) == "off":
        print(f"{name}: not saved ({SAVE_VARIABLE}=off: this run changes {source.name})")
        return None
    model_problem = why_not_current(entry.model)
    if model_problem is not None:
        raise BookModelError(f"Cannot save {name!r} for the book model {entry.model!r}: {model_problem}.")
    record = {
        "name": name,
        "description": entry.description,
        "chapter": source.name,
        "chapter_fingerprint": chapter_fingerprint(source),
        "model": entry.model,
        "model_sha256": json.loads(_note_path(entry.model).read_text())["sha256"],
        "values": {key: float(value) for key, value in values.items()},
        "saved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    path = values_path(name)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(record, indent=2) + "\n")
    partial.replace(path)
    return path


def why_values_not_current(name: str) -> str | None:
    """Why the saved book values `name` cannot be used as they are, or None when they can."""
    entry, path = BOOK_VALUES[name], values_path(name)
    if not path.exists():
        return f"they are not in the Keras cache ({path})"
    try:
        record = json.loads(path.read_text())
        made_by, model_sha256 = record["chapter_fingerprint"], record["model_sha256"]
        {key: float(value) for key, value in record["values"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        return f"{path} is unreadable ({error!r})"
    if made_by != chapter_fingerprint(chapter_source(name)):
        return f"they were chosen by another version of {chapter_source(name).name}"
    model_problem = why_not_current(entry.model)
    if model_problem is not None:
        return f"the model they were chosen for, {entry.model}, is not current: {model_problem}"
    if model_sha256 != json.loads(_note_path(entry.model).read_text())["sha256"]:
        return f"they were chosen for another copy of {entry.model} (it was made again since)"
    return None


def load_book_values(name: str, make: bool = True) -> dict[str, float]:
    """The book values `name`; choose them first by running their chapter when missing or stale."""
    _make_if_needed(name, why_values_not_current, values_path, "save_book_values", make)
    return json.loads(values_path(name).read_text())["values"]


def _make_if_needed(name: str, why_not, path_of, saver: str, make: bool) -> None:
    """Run the chapter that makes `name` when `why_not(name)` finds a problem (unless `make` is False)."""
    problem = why_not(name)
    if problem is None:
        return
    if not make:
        raise BookModelError(f"Cannot load {name!r}: {problem}.")
    source = chapter_source(name)
    print(f"{name}: {problem}.\nMaking it by running {source.name} from top to bottom"
          f"{_expected_time(source)}.", flush=True)
    seconds = run_chapter(source)
    print(f"{name}: made in {seconds:.0f} s and saved to {path_of(name)}.", flush=True)
    problem = why_not(name)
    if problem is not None:
        raise BookModelError(f"Ran {source.name}, but {name!r} is still unusable: {problem}. "
                             f"Does the chapter still call {saver}(..., {name!r})?")


def _expected_time(source: Path) -> str:
    """', which took N min when the book was last built (on TensorFlow, 2 CPU cores)', when known."""
    twin = source.with_suffix(".ipynb")
    try:
        seconds = json.loads(twin.read_text())["metadata"]["book_run"]["seconds"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    backend = keras.backend.backend()
    slower = "" if backend == "tensorflow" else f"; on {backend} expect longer (README, *Backends*)"
    return f", which took {seconds / 60:.0f} min when the book was built (TensorFlow, 2 CPU cores{slower})"


def run_chapter(source: Path) -> float:
    """Execute the chapter `source` (.md) on a fresh kernel, with a progress bar over its code cells; return seconds."""
    import jupytext
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = jupytext.read(source)
    code_cells = [index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    progress = keras.utils.Progbar(len(code_cells), unit_name="cell")
    client = NotebookClient(notebook, timeout=None, kernel_name="python3",
                            resources={"metadata": {"path": str(source.parent)}})
    start = time.perf_counter()
    # The kernel inherits this process's environment: run the chapter on this process's backend.
    with _environment(KERAS_BACKEND=keras.backend.backend()), client.setup_kernel():
        for done, index in enumerate(code_cells, start=1):
            try:
                client.execute_cell(notebook.cells[index], index)
            except CellExecutionError as error:
                raise BookModelError(f"{source.name} failed in its code cell {done} of "
                                     f"{len(code_cells)}; run it in Jupyter to see why.\n{error}") from error
            progress.update(done)
    return time.perf_counter() - start


@contextlib.contextmanager
def _environment(**values: str):
    """Set environment variables for the duration of a `with` block."""
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
