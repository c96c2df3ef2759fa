"""The book's shared models: saved with a note by their chapter, loaded by name, made again when stale."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from helpers import book_models
from helpers.cache import content_sha256
from helpers.book_models import (BookModel, BookModelError, BookValues, load_book_model,
                                 load_book_values, save_book_model, save_book_values)

# Saving a model on the TensorFlow backend under NumPy 2 makes Keras itself (not the book) emit this
# DeprecationWarning from keras/src/backend/tensorflow/core.py; the chapters never show it.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")

# Each stand-in chapter runs on a fresh kernel, which knows nothing of this test's monkeypatching:
# its first cell points the helper at the stand-in book (the kernel's working folder is the chapter's).
POINT_AT_STAND_IN = """\
from pathlib import Path
from helpers import book_models
from helpers.cache import content_sha256
book_models.CHAPTERS = Path.cwd()
book_models.BOOK_MODELS = {"tiny": book_models.BookModel("01_maker", "a tiny Dense model")}"""

def stand_in_chapter(title: str, *code_cells: str) -> str:
    """A MyST chapter whose first code cell points the helper at the stand-in book, then `code_cells`."""
    cells = "".join(f"\n```{{code-cell}} ipython3\n{code}\n```\n" for code in (POINT_AT_STAND_IN, *code_cells))
    return ("---\njupytext:\n  text_representation: {extension: .md, format_name: myst}\n"
            "kernelspec: {display_name: Python 3, language: python, name: python3}\n---\n\n"
            f"# {title}\n{cells}")


def maker_chapter(save: str = 'book_models.save_book_model(model, "tiny")') -> str:
    """The stand-in for the chapter that trains the model, ending with `save`."""
    return stand_in_chapter(
        "A stand-in for the chapter that trains the model",
        "import keras\nkeras.utils.set_random_seed(0)\n"
        'model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])',
        save)


READER_CHAPTER = stand_in_chapter(
    "A stand-in for a later chapter, opened first",
    'model = book_models.load_book_model("tiny")\nassert model.get_layer("dense").kernel.shape == (3, 2)')


@pytest.fixture
def stand_in_book(tmp_path: Path, keras_home: Path, monkeypatch) -> Path:
    """A chapters folder whose chapter 01 makes the book model "tiny"; an empty Keras cache."""
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    (chapters / "01_maker.md").write_text(maker_chapter())
    monkeypatch.setattr(book_models, "CHAPTERS", chapters)
    monkeypatch.setattr(book_models, "BOOK_MODELS", {"tiny": BookModel("01_maker", "a tiny Dense model")})
    monkeypatch.setattr(book_models, "BOOK_VALUES",
                        {"tiny_cut": BookValues("02_chooser", "tiny", "a number chosen for tiny")})
    monkeypatch.delenv(book_models.SAVE_VARIABLE, raising=False)
    return chapters


def tiny_model() -> keras.Model:
    """A model like the stand-in chapter's, made in this process."""
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])


def test_a_saved_model_loads_by_name_with_a_note_of_what_made_it(stand_in_book):
    model = tiny_model()
    path = save_book_model(model, "tiny")
    note = json.loads(path.with_suffix(".json").read_text())
    assert path == book_models.models_dir() / "tiny.keras"
    assert note["chapter"] == "01_maker.md"
    assert note["chapter_fingerprint"] == book_models.chapter_fingerprint(stand_in_book / "01_maker.md")
    assert note["sha256"] == content_sha256(path)
    loaded = load_book_model("tiny", make=False)
    inputs = np.ones((4, 3), "float32")
    np.testing.assert_array_equal(loaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0))


def test_unknown_names_are_refused_with_the_known_ones():
    with pytest.raises(KeyError, match="blood_cells_8"):
        load_book_model("blood_cells_9")


def test_the_registered_models_name_real_chapters():
    for name in book_models.BOOK_MODELS:
        assert book_models.chapter_source(name).exists()


def test_a_reader_who_opens_a_later_chapter_first_gets_the_model_made(stand_in_book):
    """The later chapter runs in a kernel (as in Jupyter); loading makes the model by running the maker."""
    reader = stand_in_book / "02_reader.md"
    reader.write_text(READER_CHAPTER)
    book_models.run_chapter(reader)
    assert book_models.why_not_current("tiny") is None


def test_a_missing_model_is_made_by_running_its_chapter_saying_so(stand_in_book, capsys):
    model = load_book_model("tiny")
    printed = capsys.readouterr().out
    assert "tiny: it is not in the Keras cache" in printed
    assert "Making it by running 01_maker.md" in printed
    assert "3/3" in printed  # the progress bar went over the chapter's three code cells
    assert "made in" in printed
    assert model.get_layer("dense").kernel.shape == (3, 2)


def test_a_code_change_in_the_chapter_makes_the_model_stale_and_prose_does_not(stand_in_book):
    source = stand_in_book / "01_maker.md"
    save_book_model(tiny_model(), "tiny")
    source.write_text(source.read_text().replace("# A stand-in", "# A reworded stand-in"))
    assert book_models.why_not_current("tiny") is None
    source.write_text(source.read_text().replace("set_random_seed(0)", "set_random_seed(1)"))
    assert "made by another version of 01_maker.md" in book_models.why_not_current("tiny")


def test_a_damaged_file_is_detected_never_loaded(stand_in_book):
    path = save_book_model(tiny_model(), "tiny")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BookModelError, match="damaged"):
        load_book_model("tiny", make=False)
    load_book_model("tiny")  # made again by the chapter
    assert book_models.why_not_current("tiny") is None


def test_a_missing_note_is_not_trusted(stand_in_book):
    path = save_book_model(tiny_model(), "tiny")
    path.with_suffix(".json").unlink()
    assert "has no note beside it" in book_models.why_not_current("tiny")


def test_a_chapter_that_no_longer_saves_the_model_is_a_clear_error(stand_in_book):
    (stand_in_book / "01_maker.md").write_text(maker_chapter(save="pass"))
    with pytest.raises(BookModelError, match="still unusable.*save_book_model"):
        load_book_model("tiny")


def test_a_failing_chapter_says_which_cell(stand_in_book):
    (stand_in_book / "01_maker.md").write_text(maker_chapter(save="1 / 0"))
    with pytest.raises(BookModelError, match="01_maker.md failed in its code cell 3 of 3"):
        load_book_model("tiny")


def test_runs_that_change_a_chapter_do_not_replace_its_model(stand_in_book, monkeypatch, capsys):
    monkeypatch.setenv(book_models.SAVE_VARIABLE, "off")
    assert save_book_model(tiny_model(), "tiny") is None
    assert "not saved" in capsys.readouterr().out
    assert not book_models.model_path("tiny").exists()


def test_values_chosen_for_a_model_load_by_name(stand_in_book):
    save_book_model(tiny_model(), "tiny")
    (stand_in_book / "02_chooser.md").write_text(stand_in_chapter("Chooses a number", "cut = 0.5"))
    path = save_book_values({"cut": 0.5}, "tiny_cut")
    assert path == book_models.models_dir() / "tiny_cut.values.json"
    assert load_book_values("tiny_cut", make=False) == {"cut": 0.5}


def test_values_go_stale_with_their_chapter_and_with_their_model(stand_in_book):
    save_book_model(tiny_model(), "tiny")
    chooser = stand_in_book / "02_chooser.md"
    chooser.write_text(stand_in_chapter("Chooses a number", "cut = 0.5"))
    save_book_values({"cut": 0.5}, "tiny_cut")
    chooser.write_text(stand_in_chapter("Chooses a number", "cut = 0.6"))
    assert "chosen by another version of 02_chooser.md" in book_models.why_values_not_current("tiny_cut")
    chooser.write_text(stand_in_chapter("Chooses a number", "cut = 0.5"))
    assert book_models.why_values_not_current("tiny_cut") is None
    save_book_model(tiny_model(), "tiny")  # the model made again: new weights, new sha256
    assert "chosen for another copy of tiny" in book_models.why_values_not_current("tiny_cut")
    with pytest.raises(BookModelError, match="Cannot load 'tiny_cut'"):
        load_book_values("tiny_cut", make=False)


def test_missing_values_are_chosen_by_running_their_chapter(stand_in_book, capsys):
    (stand_in_book / "02_chooser.md").write_text(stand_in_chapter(
        "Chooses a number for the model it loads",
        'model = book_models.load_book_model("tiny")\n'
        'book_models.BOOK_VALUES = {"tiny_cut": book_models.BookValues("02_chooser", "tiny", "a cut")}\n'
        'book_models.save_book_values({"cut": 0.25}, "tiny_cut")'))
    assert load_book_values("tiny_cut") == {"cut": 0.25}
    assert "Making it by running 02_chooser.md" in capsys.readouterr().out
    assert book_models.why_not_current("tiny") is None  # the chooser made the model it needed


def test_models_and_values_are_not_confused():
    with pytest.raises(KeyError, match="not a model"):
        book_models.model_path("blood_cells_8_referral")
    with pytest.raises(KeyError, match="not saved values"):
        book_models.values_path("blood_cells_8")
    for name in book_models.BOOK_VALUES:
        assert book_models.chapter_source(name).exists()
        assert book_models.BOOK_VALUES[name].model in book_models.BOOK_MODELS
