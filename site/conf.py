"""Sphinx configuration of the book's site. Build it with `python3 book.py site` (or `workshop`).

Title, authors, repository and chapter order come from ../myst.yml (through
tools/site.py), so there is no second table of contents here. Pages render the
committed executed notebooks; nothing runs inside Sphinx and nothing is fetched
from the network, at build time or when the site is read.
"""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from docutils import nodes  # noqa: E402
from sphinx.transforms import SphinxTransform  # noqa: E402
from sphinx_exercise.directive import SolutionStartDirective  # noqa: E402
from sphinx_exercise.nodes import solution_end_node  # noqa: E402

from tools import site as book_site  # noqa: E402

BOOK = book_site.load_config()
CHAPTERS = {chapter.docname: chapter for chapter in book_site.chapters(BOOK)}
WORKSHOP = tags.has("workshop")  # noqa: F821  (sphinx-build -t workshop)

project = BOOK["title"]
author = ", ".join(BOOK["authors"])
copyright = f"the {author}"
root_doc = "index"
language = "en"

extensions = [
    "myst_nb",
    "sphinx_book_theme",
    "sphinx_exercise",
    "sphinx_togglebutton",
    "sphinx_copybutton",
    "sphinx-mathjax-offline",  # MathJax 3 copied into _static/: math renders with no network
]
exclude_patterns = ["**/*.md.ipynb", "**/.ipynb_checkpoints"]

# myst-nb: render the stored outputs, never execute.
nb_execution_mode = "off"
nb_merge_streams = True  # one output block per cell, not one per print()
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
mathjax_path = "mathjax/tex-chtml.js"  # relative to _static/

# sphinx-exercise: the workshop edition hides every solution.
hide_solutions = WORKSHOP

html_theme = "sphinx_book_theme"
html_title = BOOK["title"] + (" (workshop edition)" if WORKSHOP else "")
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_favicon = "_static/favicon.svg"  # else the browser asks for /favicon.ico and gets a 404
html_context = {"default_mode": "auto"}  # light or dark, as the reader's system prefers
html_copy_source = False  # the notebooks to download are in notebooks/ (student ones in the workshop)
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {
    "home_page_in_toc": True,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "announcement": ("Workshop edition: solutions are hidden; each chapter's download is the "
                     "student notebook." if WORKSHOP else ""),
}


def _add_chapter_card(app, doctree, docname):
    chapter = CHAPTERS.get(docname)
    if chapter is None or app.builder.format != "html":
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None or not isinstance(section[0], nodes.title):
        return
    section.insert(1, nodes.raw("", book_site.chapter_card(chapter, WORKSHOP, BOOK), format="html"))


def _fill_landing_page(app, docname, source):
    """Replace the landing page's markers with the chapter map, the Colab sentences (once the
    repository is published) and the navigation."""
    if docname == root_doc:
        source[0] = book_site.landing_page(source[0], list(CHAPTERS.values()), WORKSHOP, BOOK)


def _link_chapters_to_pages(app, docname, source):
    """Chapters link each other's sources (`02_functional_api.md`); on the site that is the page."""
    if docname in CHAPTERS:
        source[0] = _CHAPTER_LINK.sub(r"](\1.ipynb\2)", source[0])


_CHAPTER_LINK = re.compile(r"\]\((\d\d_\w+)\.md(#[^)\s]*)?\)")


class _gated_solution_hidden(nodes.Element):
    """Where a hidden gated solution started; removed, with what follows up to its end."""


class _HiddenGatedSolution(SolutionStartDirective):
    """sphinx-exercise's `hide_solutions` drops a `solution-start` but leaves its content and
    `solution-end` (which then cannot be written); mark the start so the pair goes whole."""

    def run(self):
        super().run()  # sphinx-exercise's bookkeeping of the gated pairs
        return [_gated_solution_hidden()]


class _RemoveHiddenGatedSolutions(SphinxTransform):
    default_priority = 5  # before sphinx-exercise merges the gated solutions (10)

    def apply(self):
        for start in list(self.document.findall(_gated_solution_hidden)):
            parent = start.parent
            index = parent.index(start)
            end = next((i for i, node in enumerate(parent.children[index:], start=index)
                        if isinstance(node, solution_end_node)), None)
            if end is None:
                continue  # sphinx-exercise reports the missing solution-end
            del parent.children[index:end + 1]


def _number_exercises_per_chapter(app, env):
    """Sphinx numbers exercises across the whole book (chapter 4 would start at "Exercise 14");
    number them from 1 in each chapter, as the chapters' prose does ("exercise 4")."""
    for numbers in env.toc_fignumbers.values():
        exercises = numbers.get("exercise")
        if exercises:
            in_order = sorted(exercises, key=exercises.get)
            numbers["exercise"] = {ids: (n,) for n, ids in enumerate(in_order, start=1)}
    return []


def setup(app):
    app.connect("env-get-updated", _number_exercises_per_chapter, priority=900)  # after Sphinx's
    if WORKSHOP:
        app.add_directive("solution-start", _HiddenGatedSolution, override=True)
        app.add_transform(_RemoveHiddenGatedSolutions)
    app.connect("source-read", _fill_landing_page)
    app.connect("source-read", _link_chapters_to_pages)
    app.connect("doctree-resolved", _add_chapter_card)
    return {"parallel_read_safe": True}
