"""JAX-pass receipts: a chapter is skipped only when everything it ran from is unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools import receipts
from tools.notebooks import backend_pass

STAND_IN_CHAPTER = """---
jupytext:
  text_representation: {extension: .md, format_name: myst}
kernelspec: {display_name: Python 3, language: python, name: python3}
book:
  backends: [tensorflow, jax]
  headline: {label: "the answer", variable: answer}
---

# A stand-in chapter

```{code-cell} ipython3
import os
answer = 6 * 7
assert os.environ["KERAS_BACKEND"] == "jax"
```
"""


@pytest.fixture
def book(tmp_path: Path) -> Path:
    """A tiny book: one chapter that runs on JAX, a helpers package and the pinned packages."""
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "01_stand_in.md").write_text(STAND_IN_CHAPTER)
    (tmp_path / "helpers").mkdir()
    (tmp_path / "helpers" / "data.py").write_text("X = 1\n")
    (tmp_path / "constraints.txt").write_text("keras==3.15.0\n")
    return tmp_path


def chapter(book: Path) -> Path:
    return book / "chapters" / "01_stand_in.md"


def test_inputs_are_stable_and_name_what_changed(book: Path):
    before = receipts.chapter_inputs(chapter(book), book)
    assert receipts.chapter_inputs(chapter(book), book) == before
    (book / "helpers" / "data.py").write_text("X = 2\n")
    assert receipts.stale_inputs({"inputs": before}, receipts.chapter_inputs(chapter(book), book)) \
        == ["helpers"]
    chapter(book).write_text(STAND_IN_CHAPTER + "\nOne more sentence.\n")
    (book / "constraints.txt").write_text("keras==3.16.0\n")
    assert receipts.stale_inputs({"inputs": before}, receipts.chapter_inputs(chapter(book), book)) \
        == ["chapter", "helpers", "packages"]


def test_without_a_receipt_every_input_is_stale(book: Path):
    inputs = receipts.chapter_inputs(chapter(book), book)
    assert receipts.stale_inputs(None, inputs) == list(inputs)


def test_a_passing_chapter_gets_a_receipt_and_is_then_skipped_until_it_changes(book: Path, capsys):
    assert backend_pass("jax", sources=[chapter(book)], root=book) == (1, 0, 0)
    written = json.loads(receipts.receipts_path("jax", book).read_text())["01_stand_in"]
    assert written["headline"] == {"label": "the answer", "value": 42.0}
    assert written["inputs"] == receipts.chapter_inputs(chapter(book), book)

    assert backend_pass("jax", sources=[chapter(book)], root=book) == (0, 0, 1)
    assert "01_stand_in: skipped on jax, its inputs are unchanged" in capsys.readouterr().out

    assert backend_pass("jax", use_receipts=False, sources=[chapter(book)], root=book) == (1, 0, 0)
    (book / "helpers" / "data.py").write_text("X = 2\n")
    assert backend_pass("jax", sources=[chapter(book)], root=book) == (1, 0, 0)
    assert "running on jax (changed: helpers)" in capsys.readouterr().out


def test_a_failing_chapter_fails_and_gets_no_receipt(book: Path, capsys):
    chapter(book).write_text(STAND_IN_CHAPTER.replace("6 * 7", "1 / 0"))
    assert backend_pass("jax", sources=[chapter(book)], root=book) == (0, 1, 0)
    assert "01_stand_in: FAILED on jax" in capsys.readouterr().out
    assert not receipts.receipts_path("jax", book).exists()


def test_a_chapter_that_loads_a_shared_model_depends_on_the_chapter_that_saves_it(book: Path):
    maker = book / "chapters" / "00_maker.md"
    maker.write_text(STAND_IN_CHAPTER.replace("answer = 6 * 7", 'save_book_model(model, "tiny")'))
    assert "models" not in receipts.chapter_inputs(chapter(book), book)
    chapter(book).write_text(STAND_IN_CHAPTER.replace("answer = 6 * 7", 'answer = load_book_model("tiny")'))
    before = receipts.chapter_inputs(chapter(book), book)
    assert receipts.model_makers(chapter(book), book) == ("chapters/00_maker.md",)
    maker.write_text(maker.read_text() + "\nA new paragraph.\n")
    assert receipts.stale_inputs({"inputs": before}, receipts.chapter_inputs(chapter(book), book)) \
        == ["models"]
