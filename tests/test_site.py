"""The rendered book: both editions build (Sphinx, warnings as errors), their internal
links resolve, the workshop edition's student notebooks and instructor page are right,
and a real browser (Playwright driving Debian's chromium) reads the site as a person
would, with no request leaving the site's own origin.

The browser tests skip when no chromium is installed, unless BOOK_REQUIRE_BROWSER=1
(as in .ci/run), which makes a missing browser a failure.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
import time
from pathlib import Path

import nbformat
import pytest

from tools import site as book_site

SCREENSHOTS = book_site.BUILD / "screenshots"


@pytest.fixture(scope="session")
def chapters() -> list[book_site.Chapter]:
    """The chapters myst.yml lists (a missing notebook fails here, with the command that makes it)."""
    return book_site.chapters()


# --------------------------------------------------------------------------- the builds

@pytest.fixture(scope="session")
def built(tmp_path_factory, chapters) -> dict[str, Path]:
    """Both editions, built once per session from the committed notebooks."""
    root = tmp_path_factory.mktemp("site")
    sites = {}
    for edition in book_site.EDITIONS:
        start = time.perf_counter()
        sites[edition] = book_site.build(edition, root / edition)  # raises on any Sphinx warning
        print(f"\n{edition} edition built in {time.perf_counter() - start:.1f} s")
    return sites


@pytest.mark.parametrize("edition", list(book_site.EDITIONS))
def test_every_chapter_of_myst_yml_is_a_page(built, edition, chapters):
    for chapter in chapters:
        page = built[edition] / f"{chapter.docname}.html"
        assert page.exists(), f"{edition}: no page for {chapter.docname}"
        assert (built[edition] / book_site.NOTEBOOKS_DIR / chapter.notebook.name).exists()
        html = page.read_text(encoding="utf-8")
        assert "book-chapter-card" in html and f"{chapter.reading_minutes} minutes" in html


@pytest.mark.parametrize("edition", list(book_site.EDITIONS))
def test_built_pages_follow_the_colab_setting(built, edition, chapters):
    """While myst.yml's project.github is the placeholder no page links to Colab (the link would
    lead nowhere); once it names the repository, every chapter page does."""
    pages = {page: page.read_text(encoding="utf-8") for page in built[edition].rglob("*.html")}
    if book_site.colab_enabled():
        for chapter in chapters:
            assert chapter.colab_url() in pages[built[edition] / f"{chapter.docname}.html"], chapter.docname
    else:
        with_colab = [str(page.relative_to(built[edition])) for page, html in pages.items()
                      if re.search(r"colab\.research\.google|book-colab|Open in Colab", html)]
        assert not with_colab, f"Colab links while project.github is a placeholder: {with_colab}"


PUBLISHED = "https://github.com/example-org/keras-soup-to-nuts"


@pytest.mark.parametrize("github, enabled", [
    (f"https://github.com/{book_site.PLACEHOLDER_OWNER}/keras-soup-to-nuts", False),
    ("", False),
    (PUBLISHED, True),
    ("example-org/keras-soup-to-nuts", True),
])
def test_colab_link_only_once_the_repository_is_published(chapters, github, enabled):
    """Both states of the one setting, at the level of the functions conf.py calls."""
    config = {**book_site.load_config(), "github": github}
    assert book_site.colab_enabled(config) is enabled
    chapter = chapters[0]
    card = book_site.chapter_card(chapter, workshop=False, config=config)
    landing = book_site.landing_page((book_site.SITE_DIR / "index.md").read_text(encoding="utf-8"),
                                     chapters, workshop=False, config=config)
    url = (f"https://colab.research.google.com/github/example-org/keras-soup-to-nuts/blob/main/"
           f"chapters/{chapter.notebook.name}")
    if enabled:
        assert chapter.colab_url(config) == url
        assert f'<a class="book-colab" href="{url}">Open in Colab</a>' in card
        assert "*Open in Colab* link" in landing and f"git clone {PUBLISHED} book" in landing
    else:
        assert chapter.colab_url(config) is None
        assert "colab" not in card.lower() and "colab" not in landing.lower()
    assert "<!--" not in landing, "a marker of site/index.md was left unfilled"


def test_a_repository_that_is_not_on_github_is_refused():
    config = {**book_site.load_config(), "github": "https://gitlab.com/someone/keras-soup-to-nuts"}
    with pytest.raises(book_site.SiteError, match="project.github must be"):
        book_site.colab_enabled(config)


@pytest.mark.parametrize("edition", list(book_site.EDITIONS))
def test_internal_links_resolve(built, edition):
    broken = book_site.check_links(built[edition])
    assert not broken, "\n".join(broken)


def test_link_check_finds_a_broken_link(tmp_path):
    (tmp_path / "index.html").write_text(
        '<a href="missing.html">x</a><a href="index.html#nowhere">y</a><a id="here" href="#here">z</a>'
        '<a href="https://colab.research.google.com/github/o/r">external, not checked</a>')
    broken = book_site.check_links(tmp_path)
    assert len(broken) == 2 and "missing.html" in broken[0] and "nowhere" in broken[1]


def test_mathjax_is_served_by_the_site(built, chapters):
    """Math renders offline: the MathJax the pages load is a file of the site."""
    pages_with_math = [c for c in chapters
                       if 'class="math' in (built["full"] / f"{c.docname}.html").read_text(encoding="utf-8")]
    for chapter in pages_with_math:
        html = (built["full"] / f"{chapter.docname}.html").read_text(encoding="utf-8")
        script = re.search(r'<script[^>]+src="([^"]*tex-chtml\.js)"', html)
        assert script and not script.group(1).startswith(("http:", "https:", "//")), chapter.docname
        assert (built["full"] / chapter.docname).parent.joinpath(script.group(1)).resolve().exists()


def test_a_missing_notebook_is_named_with_the_fix(monkeypatch):
    config = book_site.load_config()
    config["toc"] = config["toc"] + ["chapters/99_not_yet.ipynb"]
    with pytest.raises(book_site.SiteError, match=r"99_not_yet\.ipynb, which does not exist"):
        book_site.chapters(config)


# --------------------------------------------------------------------------- workshop edition

def _solution_free(text: str) -> bool:
    return not re.search(r"\{solution(-start|-end)?\}", text)


def test_student_notebook_drops_solutions_and_clears_exercise_outputs():
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("## Setup"),
        nbformat.v4.new_code_cell("x = 1", outputs=[nbformat.v4.new_output("stream", text="kept\n")]),
        nbformat.v4.new_markdown_cell(
            "## Exercises\n\n```{exercise} One\n:label: ex-1\n\nDo it.\n```\n\n"
            "```{solution} ex-1\n:class: dropdown\n\nDone.\n```\n\n"
            "```{exercise} Two\n:label: ex-2\n\nAgain.\n```\n\n"
            "````{solution-start} ex-2\n:class: dropdown\n````\n\nThe gated prose."),
        nbformat.v4.new_code_cell("secret = 42", outputs=[nbformat.v4.new_output("stream", text="42\n")]),
        nbformat.v4.new_markdown_cell("````{solution-end}\n````\n\n```{exercise} Three\n:label: ex-3\n\nCode.\n```"),
        nbformat.v4.new_code_cell("starter = None", execution_count=9,
                                  outputs=[nbformat.v4.new_output("stream", text="out\n")]),
        nbformat.v4.new_markdown_cell("## Next\n\nMore."),
    ])
    student = book_site.student_notebook(notebook)
    text = "\n".join(cell.source for cell in student.cells)
    assert _solution_free(text) and "Done." not in text and "gated prose" not in text
    assert "secret" not in text and all(t in text for t in ("One", "Two", "Three", "More."))
    code = [cell for cell in student.cells if cell.cell_type == "code"]
    assert [c.source for c in code] == ["x = 1", "starter = None"]
    assert code[0].outputs and not code[1].outputs and code[1].execution_count is None
    assert "solution" in "".join(c.source for c in notebook.cells), "the original must be left alone"


def test_workshop_student_notebooks_keep_every_exercise_and_no_solution(built, chapters):
    for chapter in chapters:
        full = nbformat.read(chapter.notebook, as_version=4)
        student = nbformat.read(built["workshop"] / book_site.NOTEBOOKS_DIR / chapter.notebook.name,
                                as_version=4)
        text = "\n".join(cell.source for cell in student.cells)
        assert _solution_free(text), chapter.stem
        assert text.count("{exercise}") == "".join(c.source for c in full.cells).count("{exercise}")
        full_code = [c.source for c in full.cells if c.cell_type == "code"]
        student_code = [c.source for c in student.cells if c.cell_type == "code"]
        assert set(student_code) <= set(full_code), chapter.stem
        for cell in student.cells:
            if cell.cell_type == "code":
                compile(re.sub(r"^[!%].*$", "", cell.source, flags=re.MULTILINE), chapter.stem, "exec")


def test_instructor_page_has_each_chapter_time_objectives_and_prefetch(built, chapters):
    html = (built["workshop"] / "instructor.html").read_text(encoding="utf-8")
    assert "helpers.prefetch" in html
    for chapter in chapters:
        assert chapter.title.split(":")[0] in html, chapter.docname
        assert f"{chapter.reading_minutes} min" in html
        assert chapter.objectives, f"{chapter.docname}: no **Objectives.** list found"
        first_words = re.sub(r"[`*]", "", chapter.objectives[0]).split()[:3]
        assert " ".join(first_words) in re.sub(r"<[^>]+>", "", html), chapter.docname
        assert f"{book_site.NOTEBOOKS_DIR}/{chapter.notebook.name}" in html


# --------------------------------------------------------------------------- the real browser

def _chromium() -> str:
    path = os.environ.get("BOOK_CHROMIUM") or next(
        (found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None)
    reason = None
    if path is None or not Path(path).exists():
        reason = (f"no chromium on this machine (looked for {path or 'chromium on PATH'}; "
                  "Debian: apt-get install chromium, or set BOOK_CHROMIUM to a Chromium binary)")
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is not installed (it is in the dev extra)"
    if reason:
        if os.environ.get("BOOK_REQUIRE_BROWSER") == "1":
            pytest.fail(f"BOOK_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(f"browser test skipped: {reason}")
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="session")
def served(built):
    """Each edition served on 127.0.0.1 (a free port), stopped at the end of the session."""
    servers, urls = [], {}
    for edition, folder in built.items():
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        urls[edition] = f"http://127.0.0.1:{server.server_address[1]}/"
    yield urls
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def browser():
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()


class Visit:
    """A browser page that records console errors and every request to another origin."""

    def __init__(self, browser, base: str):
        self.base = base
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(f"{self.page.url}: {m.text}")
                     if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"{self.page.url}: {e}"))

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.base) or url.startswith(("data:", "blob:", "about:")):
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()  # and the test fails below: the site must work with no network

    def check_clean(self):
        assert not self.foreign, "requests left the site's origin:\n" + "\n".join(self.foreign)
        assert not self.errors, "errors in the page console:\n" + "\n".join(self.errors)
        self.context.close()


def _check_chapter_page(page, chapter) -> None:
    heading = page.locator("article h1").first
    rendered_title = chapter.title.replace("`", "")  # inline code in the source title renders as text
    assert rendered_title in heading.inner_text(), f"{chapter.docname}: title {heading.inner_text()!r}"
    assert page.locator("div.cell div.cell_input").count() >= 1, f"{chapter.docname}: no code cell"
    assert page.locator("div.cell_input").first.is_visible()
    page.wait_for_load_state("load")
    widths = page.eval_on_selector_all(
        "div.cell_output img", "images => images.map(i => i.complete ? i.naturalWidth : 0)")
    assert any(width > 0 for width in widths), f"{chapter.docname}: no figure loaded ({widths})"
    card = page.locator(".book-chapter-card")
    assert "minutes to read" in card.inner_text()
    colab = card.locator("a.book-colab")
    if chapter.colab_url():
        assert colab.get_attribute("href") == chapter.colab_url()
    else:
        assert colab.count() == 0, f"{chapter.docname}: a Colab link while project.github is a placeholder"
    download = card.locator("a.book-download").get_attribute("href")
    status = page.request.get(page.url.rsplit("/", 1)[0] + "/" + download).status
    assert status == 200, f"{chapter.docname}: notebook download {download} answered {status}"
    if page.locator("article .math").count():
        page.wait_for_selector("mjx-container", timeout=10_000)  # MathJax typeset it, offline


def test_full_edition_in_a_browser(browser, served, chapters):
    visit = Visit(browser, served["full"])
    page = visit.page
    page.goto(served["full"] + "index.html")
    assert "Who this book is for" in page.inner_text("article")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "landing.png"), full_page=False)

    # The navigation lists every chapter of myst.yml, in its order...
    nav = page.eval_on_selector_all(
        "nav.bd-docs-nav a.reference.internal", "links => links.map(a => a.getAttribute('href'))")
    expected = [f"{chapter.docname}.html" for chapter in chapters]
    assert [href for href in nav if href in expected] == expected, nav
    # ...and "next" walks through them in that order.
    for chapter in chapters:
        page.locator("a.right-next").first.click()
        page.wait_for_url(f"**/{chapter.docname}.html")
        _check_chapter_page(page, chapter)
    page.goto(served["full"] + f"{chapters[-1].docname}.html")
    page.screenshot(path=str(SCREENSHOTS / f"{chapters[-1].stem}.png"), full_page=False)

    # Search finds a chapter by a word of its title.
    target = chapters[-1]
    word = max(re.findall(r"[A-Za-z]{5,}", target.title.split(".", 1)[-1]), key=len).lower()
    page.goto(served["full"] + f"search.html?q={word}")
    page.wait_for_selector("#search-results ul.search li a", timeout=15_000)
    hits = page.eval_on_selector_all("#search-results ul.search li a",
                                     "links => links.map(a => a.getAttribute('href'))")
    assert any(target.docname in hit for hit in hits), f"searching {word!r} found {hits}"

    # Solutions are on the page (collapsed) and open on a click.
    with_solutions = [c for c in chapters if c.exercises]
    assert with_solutions, "no chapter has exercises"
    page.goto(served["full"] + f"{with_solutions[0].docname}.html")
    solution = page.locator("div.solution").first
    solution.locator(".admonition-title").click()
    body = solution.locator("section").first
    body.wait_for(state="visible")
    assert body.inner_text().strip()
    visit.check_clean()


def test_workshop_edition_in_a_browser(browser, served, chapters):
    visit = Visit(browser, served["workshop"])
    page = visit.page
    page.goto(served["workshop"] + "index.html")
    assert "workshop edition" in page.inner_text("article").lower()
    for chapter in chapters:
        page.goto(served["workshop"] + f"{chapter.docname}.html")
        assert page.locator("article h1").first.inner_text().startswith(chapter.title.split(":")[0])
        if chapter.exercises:
            assert page.locator("div.exercise").count() == len(chapter.exercises), chapter.docname
            assert page.locator("div.solution").count() == 0, f"{chapter.docname} shows a solution"
        assert "student notebook" in page.locator(".book-chapter-card").inner_text()
    page.goto(served["workshop"] + "index.html")
    page.locator("nav.bd-docs-nav a", has_text="Instructor guide").click()
    page.wait_for_url("**/instructor.html")
    assert "Preparing the machines" in page.inner_text("article")
    page.screenshot(path=str(SCREENSHOTS / "workshop-instructor.png"), full_page=False)
    visit.check_clean()
