"""The book's structure: paired sources, myst.yml, chapter front matter."""

from pathlib import Path

import jupytext
import pytest
import yaml

from tools.notebooks import ROOT, backends_in, chapter_sources, pair_problem

CHAPTERS = chapter_sources()


def test_there_is_at_least_one_chapter():
    assert CHAPTERS, "no chapters/NN_slug.md found"


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_executed_notebook_is_in_sync_with_its_source(source: Path):
    problem = pair_problem(source)
    assert problem is None, problem


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_source_is_a_myst_notebook_with_a_python3_kernel(source: Path):
    metadata = jupytext.read(source).metadata
    assert metadata["jupytext"]["text_representation"]["format_name"] == "myst"
    assert metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_front_matter_gives_time_estimate_and_headline(source: Path):
    book = jupytext.read(source).metadata.get("book", {})
    assert book.get("reading_minutes", 0) > 0 and book.get("cpu_seconds", 0) > 0, \
        f"{source.name}: front matter needs book.reading_minutes and book.cpu_seconds"
    assert {"label", "variable"} <= set(book.get("headline", {})), \
        f"{source.name}: front matter needs book.headline.label and .variable"


def test_myst_yml_lists_every_chapter_in_order():
    config = yaml.safe_load((ROOT / "myst.yml").read_text())
    listed = [entry["file"] for entry in config["project"]["toc"]]
    expected = [f"chapters/{source.stem}.ipynb" for source in CHAPTERS]
    assert listed == expected, "myst.yml's toc must list every chapter's .ipynb in file-name order"
    assert config["project"]["title"] and config["project"]["authors"]


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_keras_chapters_are_tested_on_jax_and_tensorflow_chapters_say_they_need_it(source: Path):
    notebook = jupytext.read(source)
    backends = backends_in(notebook.metadata)
    if int(source.name[:2]) <= 6:  # chapters 01-06 teach Keras, not TensorFlow
        assert backends == ["tensorflow", "jax"], \
            f"{source.name}: a Keras chapter lists book.backends: [tensorflow, jax]"
    else:
        assert backends == ["tensorflow"], f"{source.name}: chapters 07-09 are TensorFlow-only"
        opening = " ".join(cell.source for cell in notebook.cells[:3] if cell.cell_type == "markdown")
        assert "TensorFlow-only" in opening or "TensorFlow backend" in opening, \
            f"{source.name}: its first lines must say that it needs the TensorFlow backend"
