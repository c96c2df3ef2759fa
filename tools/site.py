"""Render the book as a website, offline, in two editions.

    python -m tools.site book [--execute-all]  # chapters (executed or reused), the site, the table
    python -m tools.site site                  # _build/html/ from the committed notebooks
    python -m tools.site workshop              # _build/workshop/: solutions hidden, student notebooks,
                                               #   an instructor page
    python -m tools.site check-links DIR       # every internal link of a built site resolves

`myst.yml` is the single source of the title, the authors, the repository and
the chapter order; `site/conf.py` (Sphinx + myst-nb + sphinx-book-theme) reads
it through this module. Pages render the committed, executed `.ipynb` twins:
nothing is executed inside Sphinx, and the build needs no network (MathJax
comes from the PyPI package sphinx-mathjax-offline and is served by the site
itself).
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import yaml

from tools.notebooks import (backends_in, chapter_sources, execute_chapter, pair_problem, result_row,
                             write_pair, write_results)

ROOT = Path(__file__).resolve().parent.parent
SITE_DIR = ROOT / "site"
BUILD = ROOT / "_build"
EDITIONS = {"full": BUILD / "html", "workshop": BUILD / "workshop"}
NOTEBOOKS_DIR = "notebooks"  # where each edition's downloadable .ipynb files live in the site
COLAB = "https://colab.research.google.com/github"
BACKEND_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
PLACEHOLDER_OWNER = "PLACEHOLDER-OWNER"  # myst.yml's project.github until the book is published
# The Keras-cache groups of helpers.prefetch, and what in a chapter's code needs each.
DATA_GROUPS = {
    "fashion-mnist": re.compile(r"fashion_mnist|ensure_files\(\"fashion-mnist\"\)"),
    "mobilenet": re.compile(r"mobilenet", re.IGNORECASE),
    "pbc": re.compile(r"load_blood_cells|pbc_subset"),
}


class SiteError(RuntimeError):
    """The site cannot be built; the message says why and what to do."""


# --------------------------------------------------------------------------- myst.yml, chapters

def load_config() -> dict:
    """myst.yml's project block: title, authors, github and the chapter order (toc)."""
    project = yaml.safe_load((ROOT / "myst.yml").read_text(encoding="utf-8"))["project"]
    return {
        "title": project["title"],
        "description": " ".join(str(project.get("description", "")).split()),
        "authors": [a["name"] if isinstance(a, dict) else str(a) for a in project.get("authors", [])],
        "github": str(project.get("github", "")).rstrip("/"),
        "toc": [entry["file"] for entry in project.get("toc", []) if "file" in entry],
    }


def github_repo(config: dict | None = None) -> tuple[str, str]:
    """(owner, name) of the repository in myst.yml's project.github."""
    url = (config or load_config())["github"]
    parts = [p for p in re.sub(r"^https?://github\.com/", "", url).split("/") if p]
    if len(parts) < 2:
        raise SiteError(f"myst.yml: project.github must be https://github.com/OWNER/REPO, not {url!r}")
    return parts[0], parts[1]


@dataclass
class Chapter:
    notebook: Path  # chapters/NN_slug.ipynb, the executed twin
    docname: str  # chapters/NN_slug
    title: str
    reading_minutes: int | None
    cpu_seconds: int | None
    headline_label: str
    time_text: str  # the chapter's "**Time.**" paragraph, markdown
    objectives: list[str] = field(default_factory=list)  # markdown bullets
    exercises: list[str] = field(default_factory=list)  # exercise titles
    data_groups: list[str] = field(default_factory=list)  # helpers.prefetch --group values
    run: dict | None = None  # the stored book_run metadata (seconds, headline), if any
    backends: list[str] = field(default_factory=list)  # book.backends: the backends it is tested on

    @property
    def stem(self) -> str:
        return self.notebook.stem

    @property
    def source(self) -> Path:
        return self.notebook.with_suffix(".md")

    def colab_url(self, config: dict | None = None) -> str:
        owner, repo = github_repo(config)
        return f"{COLAB}/{owner}/{repo}/blob/main/chapters/{self.notebook.name}"


def _paragraph_after(text: str, marker: str) -> str:
    """The paragraph of `text` that starts with `marker`, marker removed."""
    for paragraph in re.split(r"\n\s*\n", text):
        if paragraph.strip().startswith(marker):
            return " ".join(paragraph.strip()[len(marker):].split())
    return ""


def _bullets_after(text: str, marker: str) -> list[str]:
    """The bullet list that follows the paragraph starting with `marker`."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith(marker)), None)
    if start is None:
        return []
    bullets: list[str] = []
    for line in lines[start + 1:]:
        if line.startswith(("- ", "* ")):
            bullets.append(line[2:].strip())
        elif line.startswith("  ") and bullets and line.strip():
            bullets[-1] += " " + line.strip()  # a bullet's continuation line
        elif line.strip():
            break  # the paragraph after the list
    return bullets


def read_chapter(notebook_path: Path) -> Chapter:
    notebook = nbformat.read(notebook_path, as_version=4)
    markdown = "\n\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    title_match = re.search(r"^# (.+)$", markdown, re.MULTILINE)
    book = notebook.metadata.get("book", {})
    return Chapter(
        notebook=notebook_path,
        docname=notebook_path.relative_to(ROOT).with_suffix("").as_posix(),
        title=title_match.group(1).strip() if title_match else notebook_path.stem,
        reading_minutes=book.get("reading_minutes"),
        cpu_seconds=book.get("cpu_seconds"),
        backends=backends_in(notebook.metadata),
        headline_label=book.get("headline", {}).get("label", ""),
        time_text=_paragraph_after(markdown, "**Time.**"),
        objectives=_bullets_after(markdown, "**Objectives.**"),
        exercises=re.findall(r"^`{3,}\{exercise\}\s*(.+)$", markdown, re.MULTILINE),
        data_groups=[group for group, pattern in DATA_GROUPS.items() if pattern.search(code)],
        run=notebook.metadata.get("book_run"),
    )


def chapters(config: dict | None = None) -> list[Chapter]:
    """The chapters myst.yml lists, in its order; fails clearly when a notebook is missing."""
    config = config or load_config()
    if not config["toc"]:
        raise SiteError("myst.yml lists no chapter (project.toc is empty)")
    found = []
    for entry in config["toc"]:
        path = ROOT / entry
        if path.suffix != ".ipynb":
            raise SiteError(f"myst.yml's toc lists {entry}: the site renders executed notebooks (.ipynb)")
        if not path.exists():
            source = path.with_suffix(".md")
            fix = (f"run `python book.py sync {source.relative_to(ROOT).as_posix()}`" if source.exists()
                   else f"{source.relative_to(ROOT).as_posix()} does not exist either: fix myst.yml")
            raise SiteError(f"myst.yml lists {entry}, which does not exist: {fix}.")
        found.append(read_chapter(path))
    return found


# --------------------------------------------------------------------------- student notebooks

_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*\{(?P<name>[a-z-]+)\}")


def _strip_solutions(text: str, gated: bool) -> tuple[str, bool]:
    """Remove solution directives from one markdown cell's text.

    Returns (kept text, whether a gated solution is still open at the end).
    `{solution}` blocks are dropped whole; everything from a `{solution-start}`
    to its `{solution-end}` (across cells) is dropped.
    """
    kept: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i].strip())
        name = match.group("name") if match else None
        if match and name in {"solution", "solution-start", "solution-end"}:
            fence = match.group("fence")
            end = i + 1
            while end < len(lines) and not (lines[end].strip().startswith(fence[0] * len(fence))
                                            and set(lines[end].strip()) == {fence[0]}):
                end += 1
            i = end + 1
            gated = {"solution-start": True, "solution-end": False}.get(name, gated)
            continue
        if not gated:
            kept.append(lines[i])
        i += 1
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip("\n"), gated


def student_notebook(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The chapter for students: no solutions, the exercises' code cells without outputs."""
    student = copy.deepcopy(notebook)
    cells = []
    gated = False
    in_exercises = False
    for cell in student.cells:
        if cell.cell_type == "markdown":
            headings = re.findall(r"^## (.+)$", cell.source, re.MULTILINE)
            if headings:
                in_exercises = headings[-1].strip().lower().startswith("exercises")
            text, gated_after = _strip_solutions(cell.source, gated)
            gated = gated_after
            if text.strip():
                cell.source = text
                cells.append(cell)
            continue
        if gated:
            continue  # a code cell inside a gated solution
        if cell.cell_type == "code" and in_exercises:
            cell.outputs = []
            cell.execution_count = None
        cells.append(cell)
    student.cells = cells
    student.metadata.pop("book_run", None)
    student.metadata.get("jupytext", {}).pop("formats", None)  # no .md twin beside a student copy
    student.metadata["book_edition"] = "student"
    return student


# --------------------------------------------------------------------------- generated pages

def _minutes(seconds: float | None) -> str:
    if not seconds:
        return "-"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def chapter_map(found: list[Chapter]) -> str:
    """The landing page's table of chapters (markdown)."""
    rows = ["| # | chapter | reading | runs in (2 CPU cores) |", "|---|---|---|---|"]
    for number, chapter in enumerate(found, start=1):
        title = re.sub(r"^\d+\.\s*", "", chapter.title)
        minutes = f"{chapter.reading_minutes} min" if chapter.reading_minutes else "-"
        rows.append(f"| {number} | [{title}]({chapter.docname}.ipynb) | {minutes} | "
                    f"≤ {_minutes(chapter.cpu_seconds)} |")
    return "\n".join(rows)


def toctree(found: list[Chapter], workshop: bool) -> str:
    """The hidden toctrees that make the navigation (chapters, then the instructor page)."""
    entries = "\n".join(chapter.docname for chapter in found)
    tree = f"```{{toctree}}\n:hidden:\n:caption: Chapters\n:maxdepth: 1\n\n{entries}\n```\n"
    if workshop:
        tree += "\n```{toctree}\n:hidden:\n:caption: Workshop\n:maxdepth: 1\n\ninstructor\n```\n"
    return tree


USB_FLAGS = "--from /media/usb/datasets --from /media/usb/models --offline"


def prefetch_command(groups: list[str]) -> str:
    """The command that fills a machine's Keras cache for these groups from a workshop USB stick."""
    flags = "".join(f" --group {group}" for group in groups)
    return f".venv/bin/python -m helpers.prefetch{flags} {USB_FLAGS}"


def instructor_page(found: list[Chapter]) -> str:
    """The workshop's instructor page (markdown), from the chapters' front matter and intros."""
    total_read = sum(c.reading_minutes or 0 for c in found)
    total_cpu = sum(c.cpu_seconds or 0 for c in found)
    lines = [
        "# Instructor guide",
        "",
        "This is the **workshop edition** of the book: the pages are the same, the solutions "
        "are hidden, and each chapter's download is the *student notebook* (solution cells "
        "removed, outputs of the exercise cells cleared). Everything below is generated from "
        "the chapters themselves, so it stays in step with them.",
        "",
        "## Preparing the machines (offline)",
        "",
        "On one machine with network, in the book's folder:",
        "",
        "```bash",
        "python3 book.py prefetch   # .venv with the pinned packages; every data file in ~/.keras, verified",
        "python3 book.py workshop   # this site, into _build/workshop/",
        "cp -r ~/.keras/datasets ~/.keras/models _build/workshop /media/usb/",
        "```",
        "",
        "On each participant's machine, once the book's packages are installed "
        "(`python3 book.py prefetch` does it where PyPI is reachable), the whole cache comes "
        "from the stick, each file checked against its sha256:",
        "",
        "```bash",
        f".venv/bin/python -m helpers.prefetch {USB_FLAGS}",
        "```",
        "",
        "Serve this site in a room without wifi from any machine that has Python: it makes "
        "no request to any other server, so every page, figure, formula and the search work.",
        "",
        "```bash",
        "python3 -m http.server --directory /media/usb/workshop 8000",
        "```",
        "",
        "The full edition (solutions shown) is built by `python3 book.py build` into "
        "`_build/html/`; keep it for yourself.",
        "",
        "## Timetable",
        "",
        f"{len(found)} chapters, about {total_read} minutes of reading and at most "
        f"{_minutes(total_cpu)} of computing on 2 CPU cores in all. The budgets are for "
        "TensorFlow, the default backend; on JAX, chapters 3 and 4 run several times longer on a "
        "CPU (the landing page's backend table).",
        "",
        "| # | chapter | reading | notebook run (budget) | tested on | data to prefetch "
        "| student notebook |",
        "|---|---|---|---|---|---|---|",
    ]
    for number, chapter in enumerate(found, start=1):
        title = re.sub(r"^\d+\.\s*", "", chapter.title).split(":")[0]  # short: the table is wide
        groups = ", ".join(chapter.data_groups) or "none"
        backends = ", ".join(BACKEND_NAMES.get(name, name) for name in chapter.backends)
        minutes = f"{chapter.reading_minutes} min" if chapter.reading_minutes else "-"
        lines.append(
            f"| {number} | [{title}]({chapter.docname}.ipynb) | {minutes} | "
            f"≤ {_minutes(chapter.cpu_seconds)} | {backends} | {groups} | "
            f"<a href=\"{NOTEBOOKS_DIR}/{chapter.notebook.name}\" download>{chapter.notebook.name}</a> |")
    for number, chapter in enumerate(found, start=1):
        lines += ["", f"## {chapter.title}", ""]
        if chapter.time_text:
            lines += [f"**Time.** {chapter.time_text}", ""]
        if chapter.objectives:
            lines += ["**Objectives.** Participants can:", ""]
            lines += [f"- {objective}" for objective in chapter.objectives]
            lines.append("")
        if chapter.exercises:
            lines += ["**Exercises** (solutions are in the full edition):", ""]
            lines += [f"{i}. {title}" for i, title in enumerate(chapter.exercises, start=1)]
            lines.append("")
        lines += ["**Prepare the machines:**", "", "```bash",
                  prefetch_command(chapter.data_groups) if chapter.data_groups
                  else "# this chapter reads no data file", "```"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the Sphinx build

def stage(edition: str, found: list[Chapter], srcdir: Path) -> None:
    """Lay out the Sphinx source folder: landing page, chapter notebooks, instructor page."""
    (srcdir / "chapters").mkdir(parents=True, exist_ok=True)
    wanted = {"index.md"} | ({"instructor.md"} if edition == "workshop" else set())
    for stale in srcdir.iterdir():
        if stale.is_file() and stale.name not in wanted:
            stale.unlink()
    for stale in (srcdir / "chapters").iterdir():
        if stale.name not in {c.notebook.name for c in found}:
            stale.unlink()
    _write_if_changed(srcdir / "index.md", (SITE_DIR / "index.md").read_text(encoding="utf-8"))
    for chapter in found:
        target = srcdir / "chapters" / chapter.notebook.name
        if not target.exists() or target.read_bytes() != chapter.notebook.read_bytes():
            shutil.copy2(chapter.notebook, target)  # keeps the mtime, so Sphinx rebuilds only changes
    if edition == "workshop":
        _write_if_changed(srcdir / "instructor.md", instructor_page(found))


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def write_notebooks(edition: str, found: list[Chapter], outdir: Path) -> None:
    """Each chapter's downloadable .ipynb: the committed one, or the student one (workshop)."""
    folder = outdir / NOTEBOOKS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for chapter in found:
        if edition == "workshop":
            notebook = student_notebook(nbformat.read(chapter.notebook, as_version=4))
            nbformat.write(notebook, folder / chapter.notebook.name)
        else:
            shutil.copyfile(chapter.notebook, folder / chapter.notebook.name)


def build(edition: str = "full", outdir: Path | None = None, quiet: bool = True) -> Path:
    """Build one edition of the site with Sphinx (warnings are errors); return its folder."""
    if edition not in EDITIONS:
        raise SiteError(f"unknown edition {edition!r}: use one of {', '.join(EDITIONS)}")
    outdir = Path(outdir or EDITIONS[edition])
    found = chapters()
    work = outdir.parent / f".{outdir.name}-work"  # staged sources and Sphinx's doctree cache
    stage(edition, found, work / "src")
    if outdir.exists():
        shutil.rmtree(outdir)  # no page of a chapter that left myst.yml survives
    # -E: read every page afresh (the landing and instructor pages depend on all chapters).
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-E", "-W", "--keep-going",
               *(["-q"] if quiet else []), *(["-t", "workshop"] if edition == "workshop" else []),
               "-c", str(SITE_DIR), "-d", str(work / "doctrees"), str(work / "src"), str(outdir)]
    result = subprocess.run(command, cwd=ROOT, capture_output=quiet, text=True)
    if result.returncode != 0:
        output = (result.stdout or "") + (result.stderr or "") if quiet else ""
        raise SiteError(f"Sphinx failed to build the {edition} edition (warnings count as errors):\n"
                        f"{output.strip()}")
    write_notebooks(edition, found, outdir)
    broken = check_links(outdir)
    if broken:
        raise SiteError(f"{len(broken)} broken internal link(s) in {outdir}:\n" + "\n".join(broken[:20]))
    return outdir


# --------------------------------------------------------------------------- link check

class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in {"id", "name"} and (name == "id" or tag == "a"):
                self.ids.add(value)
            elif (name == "href" and tag in {"a", "link", "area"}) or (
                    name == "src" and tag in {"img", "script", "iframe", "source"}):
                self.links.append(value)


def check_links(site: Path) -> list[str]:
    """Broken internal links of a built site: 'page -> link (why)'. External links are not checked."""
    site = Path(site)
    parsed: dict[Path, _Links] = {}

    def parse(page: Path) -> _Links:
        if page not in parsed:
            parser = _Links()
            parser.feed(page.read_text(encoding="utf-8", errors="replace"))
            parsed[page] = parser
        return parsed[page]

    broken = []
    for page in sorted(site.rglob("*.html")):
        if page.relative_to(site).parts[0] == "_static":
            continue  # the theme's template fragments, not pages
        for link in parse(page).links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "javascript:", "data:")):
                continue  # another origin (Colab, the repository): not this site's to check
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            where = f"{page.relative_to(site)} -> {link}"
            if not target.is_relative_to(site.resolve()):
                broken.append(f"{where} (leaves the site)")
            elif not target.exists():
                broken.append(f"{where} (no such file)")
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in parse(target).ids:
                broken.append(f"{where} (no id {parts.fragment!r} in {target.name})")
    return broken


# --------------------------------------------------------------------------- the book command

def build_book(execute_all: bool = False) -> int:
    """Execute the chapters that changed (reuse the others' in-sync .ipynb), build the site, print the table."""
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        raise SiteError("the committed notebooks come from the TensorFlow backend: unset KERAS_BACKEND "
                        "(time another backend with benchmarks/run_chapters.py --backend)")
    rows = []
    for source in chapter_sources():
        problem = None if not execute_all else "--execute-all"
        problem = problem or pair_problem(source)
        if problem is None:
            notebook = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
            run = notebook.metadata.get("book_run", {})
            seconds, headline, how = run.get("seconds"), run.get("headline"), "reused"
            print(f"{source.stem}: reused the committed, in-sync {source.with_suffix('.ipynb').name}",
                  flush=True)
        else:
            print(f"{source.stem}: executing ({problem.split(': run `')[0]})", flush=True)
            notebook, seconds, headline = execute_chapter(source)
            write_pair(source, notebook)
            how = "executed"
            print(f"{source.stem}: executed in {seconds:.1f} s", flush=True)
        rows.append({**result_row(source, notebook, seconds, headline), "how": how})

    listed = set(load_config()["toc"])
    for row in rows:
        if f"chapters/{row['chapter']}.ipynb" not in listed:
            print(f"note: chapters/{row['chapter']}.md is not in myst.yml's toc, so not on the site")
    start = time.perf_counter()
    site = build("full")
    print(f"Site written to {site.relative_to(ROOT)}/ in {time.perf_counter() - start:.1f} s "
          f"(open {site.relative_to(ROOT)}/index.html, or serve it: "
          f"python3 -m http.server --directory {site.relative_to(ROOT)})", flush=True)

    print(f"\n{'chapter':<32} {'how':<9} {'seconds':>8} {'budget':>7}  headline")
    for row in rows:
        seconds = f"{row['seconds']:.1f}" if row["seconds"] is not None else "-"
        budget = row["budget_seconds"]
        over = " OVER" if budget and row["seconds"] and row["seconds"] > budget else ""
        headline = row["headline"]
        result = f"{headline['label']} = {headline['value']:.3f}" if headline else "- (re-sync to record it)"
        print(f"{row['chapter']:<32} {row['how']:<9} {seconds:>8} {budget or '-':>7}{over}  {result}")
    print("(reused: the chapter's .ipynb was in sync with its .md; seconds and headline are from its last run)")
    write_results(rows, ROOT / "benchmarks" / "results.json")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.site", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    book = commands.add_parser("book", help="chapters (executed if changed), the site, the table")
    book.add_argument("--execute-all", action="store_true", help="execute every chapter, changed or not")
    for name, edition in (("site", "full"), ("workshop", "workshop")):
        sub = commands.add_parser(name, help=f"build the {edition} edition")
        sub.add_argument("--out", type=Path, default=EDITIONS[edition])
    links = commands.add_parser("check-links", help="check a built site's internal links")
    links.add_argument("site", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "book":
            return build_book(execute_all=args.execute_all)
        if args.command == "check-links":
            broken = check_links(args.site)
            print("\n".join(broken) or f"Every internal link of {args.site} resolves.")
            return 1 if broken else 0
        edition = "full" if args.command == "site" else "workshop"
        start = time.perf_counter()
        outdir = build(edition, args.out)
        shown = outdir.resolve().relative_to(ROOT) if outdir.resolve().is_relative_to(ROOT) else outdir
        print(f"The {edition} edition is in {shown}/ ({time.perf_counter() - start:.1f} s); "
              f"serve it with: python3 -m http.server --directory {shown}")
        if edition == "workshop":
            print(f"Student notebooks: {shown}/{NOTEBOOKS_DIR}/; instructor page: {shown}/instructor.html")
    except SiteError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
