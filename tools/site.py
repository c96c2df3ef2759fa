"""Render the book as a website, offline, in two editions.

    python -m tools.site book [--execute-all]  # chapters (executed or reused), the site, the table
    python -m tools.site site                  # _build/html/ from the committed notebooks
    python -m tools.site workshop              # _build/workshop/: solutions hidden, student notebooks
                                               #   (refused if a cell needs a removed solution),
                                               #   an instructor page
    python -m tools.site check-links DIR       # every internal link of a built site resolves

`myst.yml` is the single source of the title, the authors, the repository and
the chapter order; `site/conf.py` (Sphinx + myst-nb + sphinx-book-theme) reads
it through this module. Pages render the committed, executed `.ipynb` twins:
nothing is executed inside Sphinx, and the build needs no network (MathJax
comes from the PyPI package sphinx-mathjax-offline and is served by the site
itself). The pages offer "Open in Colab" only once `project.github` names the
published repository instead of the placeholder.
"""

from __future__ import annotations

import argparse
import ast
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
    "bccd": re.compile(r"load_bccd_cells|bccd_wbc"),
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


_GITHUB = re.compile(r"^(?:https?://github\.com/)?(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+?)(?:\.git)?/?$")


def github_repo(config: dict | None = None) -> tuple[str, str]:
    """(owner, name) of the repository in myst.yml's project.github (a GitHub URL or OWNER/REPO)."""
    url = (config or load_config())["github"]
    match = _GITHUB.match(url)
    if not match:
        raise SiteError(f"myst.yml: project.github must be https://github.com/OWNER/REPO (or OWNER/REPO), "
                        f"not {url!r}")
    return match.group("owner"), match.group("repo")


def colab_enabled(config: dict | None = None) -> bool:
    """Whether the site offers "Open in Colab": only once myst.yml's project.github names the
    published repository. While its owner is the placeholder, a Colab link would lead nowhere."""
    config = config or load_config()
    return bool(config["github"]) and github_repo(config)[0] != PLACEHOLDER_OWNER


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

    def colab_url(self, config: dict | None = None) -> str | None:
        """The chapter's notebook opened in Colab, or None while the repository is a placeholder."""
        if not colab_enabled(config):
            return None
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


# A removed solution must leave nothing behind that a later cell needs. The check is static:
# it follows, cell by cell and statement by statement, the names Python code binds (assignment,
# def, class, import, for/with/except targets, :=) and loads, and reports a kept cell that loads
# a name before any kept cell has bound it while a removed solution cell did. Names a function
# or lambda uses count as used where it is defined (conservative: it may be called there).
# What the check cannot see (a solution mutating an object, writing a file) is left to running
# a student notebook in tests/test_workshop.py.

_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_CODE_MAGICS = {"time", "timeit", "capture", "prun"}  # magics whose argument is kernel code


def _bound_in(node: ast.AST) -> set[str]:
    """Every name a scope binds anywhere inside it (parameters, assignments, defs, imports...)."""
    bound: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and not isinstance(child.ctx, ast.Load):
            bound.add(child.id)
        elif isinstance(child, ast.arg):
            bound.add(child.arg)
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and child is not node:
            bound.add(child.name)
        elif isinstance(child, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in child.names)
        elif isinstance(child, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and child.name:
            bound.add(child.name)
        elif isinstance(child, ast.MatchMapping) and child.rest:
            bound.add(child.rest)
    return bound


def _free_in(scope: ast.AST) -> set[str]:
    """The names a nested scope (function, lambda, class body, comprehension) takes from outside."""
    if isinstance(scope, ast.ClassDef):
        inner = scope.body
    elif isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
        inner = [scope.args, *scope.body]
    elif isinstance(scope, ast.Lambda):
        inner = [scope.args, scope.body]
    else:  # a comprehension: its targets are its own
        inner = [scope]
    loaded = {n.id for part in inner for n in ast.walk(part)
              if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return loaded - set().union(*(_bound_in(part) for part in inner))


class _CellNames:
    """Walks one cell's statements in execution order, calling load(name) where the code reads
    a name and bind(name) where it binds one."""

    def __init__(self, load, bind):
        self.load, self.bind = load, bind

    def expr(self, node: ast.AST | None) -> None:
        if node is None:
            return
        if isinstance(node, ast.Name):
            (self.load if isinstance(node.ctx, ast.Load) else self.bind)(node.id)
        elif isinstance(node, ast.NamedExpr):
            self.expr(node.value)
            self.bind(node.target.id)
        elif isinstance(node, ast.Lambda):
            for default in [*node.args.defaults, *node.args.kw_defaults]:
                self.expr(default)
            for name in sorted(_free_in(node)):
                self.load(name)
        elif isinstance(node, _COMPREHENSIONS):
            for name in sorted(_free_in(node)):
                self.load(name)
        elif (magic_code := self._code_magic(node)) is not None:
            self.statements(magic_code)
        else:
            for child in ast.iter_child_nodes(node):
                self.expr(child)

    @staticmethod
    def _code_magic(node: ast.AST) -> list[ast.stmt] | None:
        """`%time f(x)` or `%%timeit` became get_ipython().run_*_magic(name, ...): parse its code."""
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"run_line_magic", "run_cell_magic"}
                and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args)
                and node.args and node.args[0].value in _CODE_MAGICS):
            return None
        code = node.args[-1].value
        if node.func.attr == "run_line_magic":
            code = re.sub(r"^(\s*-\w+(\s+[^-\s]\S*)?)*\s*", "", code)  # %timeit -n 10 -r 3 ...
        return ast.parse(code).body

    def target(self, node: ast.AST) -> None:
        if isinstance(node, ast.Name):
            self.bind(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                self.target(element)
        elif isinstance(node, ast.Starred):
            self.target(node.value)
        else:  # a[i] = ..., a.x = ...: loads a (and i)
            self.expr(node)

    def statements(self, body: list[ast.stmt]) -> None:
        for statement in body:
            self.statement(statement)

    def statement(self, node: ast.stmt) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for part in node.decorator_list:
                self.expr(part)
            if isinstance(node, ast.ClassDef):
                for part in [*node.bases, *node.keywords]:
                    self.expr(part)
            else:
                for part in [*node.args.defaults, *node.args.kw_defaults]:
                    self.expr(part)
            self.bind(node.name)  # before its body: a recursive function uses its own name
            for name in sorted(_free_in(node)):
                self.load(name)
        elif isinstance(node, ast.Assign):
            self.expr(node.value)
            for target in node.targets:
                self.target(target)
        elif isinstance(node, ast.AugAssign):
            if isinstance(node.target, ast.Name):
                self.load(node.target.id)
            self.expr(node.value)
            self.target(node.target)
        elif isinstance(node, ast.AnnAssign):
            self.expr(node.value)
            self.target(node.target)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name != "*":
                    self.bind((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self.expr(node.iter)
            self.target(node.target)
            self.statements(node.body + node.orelse)
        elif isinstance(node, (ast.While, ast.If)):
            self.expr(node.test)
            self.statements(node.body + node.orelse)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                self.expr(item.context_expr)
                if item.optional_vars is not None:
                    self.target(item.optional_vars)
            self.statements(node.body)
        elif isinstance(node, (ast.Try, getattr(ast, "TryStar", ast.Try))):
            self.statements(node.body)
            for handler in node.handlers:
                self.expr(handler.type)
                if handler.name:
                    self.bind(handler.name)
                self.statements(handler.body)
            self.statements(node.orelse + node.finalbody)
        elif isinstance(node, ast.Delete):  # `del x` needs x
            for target in node.targets:
                self.load(target.id) if isinstance(target, ast.Name) else self.expr(target)
        elif isinstance(node, ast.Match):
            self.expr(node.subject)
            for case in node.cases:
                for name in sorted(_bound_in(case.pattern)):
                    self.bind(name)
                self.expr(case.guard)
                self.statements(case.body)
        else:  # expressions, return, raise, assert, global...
            for child in ast.iter_child_nodes(node):
                self.expr(child)


def cell_code(source: str, where: str) -> list[ast.stmt]:
    """A code cell's statements, IPython syntax (%magics, !commands) turned into Python as the
    kernel does; a cell that does not parse is an error, never silently skipped."""
    from IPython.core.inputtransformer2 import TransformerManager

    python = TransformerManager().transform_cell(source)
    try:
        return compile(python, where, "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT).body
    except SyntaxError as error:
        raise SiteError(f"{where} does not parse, so it cannot be checked: {error}") from error


def solution_dependencies(notebook: nbformat.NotebookNode, name: str = "notebook") -> list[str]:
    """Why `notebook`'s student version (student_notebook) would fail where a solution is gone:
    one line per kept code cell that uses a name only a removed solution cell defines."""
    marked = copy.deepcopy(notebook)
    for index, cell in enumerate(marked.cells):
        cell.metadata["book_cell_index"] = index
    kept = {cell.metadata["book_cell_index"] for cell in student_notebook(marked).cells}

    kept_names: set[str] = set()  # bound by a kept cell so far
    solution_names: dict[str, int] = {}  # name -> the removed cell that binds it
    problems: list[str] = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        where = f"{name}: cell {index + 1}"
        statements = cell_code(cell.source, where)
        if index in kept:
            def load(used: str, where=where, source=cell.source) -> None:
                if used not in kept_names and used in solution_names:
                    line = next((text for text in source.splitlines() if used in text), source)
                    problems.append(
                        f"{where} ({line.strip()[:60]!r}) uses {used!r}, which only the removed "
                        f"solution in cell {solution_names[used] + 1} defines")
                    kept_names.add(used)  # one report per name is enough
            walker = _CellNames(load, kept_names.add)
        else:
            def bind(defined: str, index=index) -> None:
                if defined not in kept_names:
                    solution_names.setdefault(defined, index)
            walker = _CellNames(lambda used: None, bind)
        try:
            walker.statements(statements)
        except SyntaxError as error:  # the code inside a %time or %%timeit magic
            raise SiteError(f"{where}: the code of its magic does not parse: {error}") from error
    return problems


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


def chapter_card(chapter: Chapter, workshop: bool, config: dict | None = None) -> str:
    """The box under each chapter's title (HTML): time, download, and Colab once the repository
    is published (colab_enabled)."""
    minutes = f"About {chapter.reading_minutes} minutes to read" if chapter.reading_minutes else ""
    budget = chapter.cpu_seconds
    runs = f"the notebook runs in at most {_minutes(budget)} on 2 CPU cores" if budget else ""
    time_text = "; ".join(part for part in (minutes, runs) if part)
    download = "Download the student notebook" if workshop else "Download the notebook"
    colab_url = chapter.colab_url(config)
    colab = f'<a class="book-colab" href="{colab_url}">Open in Colab</a>' if colab_url else ""
    return (
        '<div class="book-chapter-card">'
        f'<p class="book-time">{time_text}.</p>'
        '<p class="book-links">'
        f'<a class="book-download" href="../{NOTEBOOKS_DIR}/{chapter.notebook.name}" download>'
        f'{download} (.ipynb)</a>{colab}'
        '</p></div>'
    )


def landing_page(text: str, found: list[Chapter], workshop: bool, config: dict | None = None) -> str:
    """site/index.md with its markers filled: the edition note, the chapter map, the Colab
    sentences (only once the repository is published) and the navigation."""
    config = config or load_config()
    repository = "https://github.com/{}/{}".format(*github_repo(config)) if colab_enabled(config) else ""
    replacements = {
        "<!-- edition -->": (
            "*This is the **workshop edition**: solutions are hidden, the notebooks to download are "
            "student notebooks, and the [instructor guide](instructor.md) has the timetable and "
            "how to prepare the machines.*" if workshop else ""),
        "<!-- chapter-map -->": chapter_map(found),
        "<!-- colab-link -->": " and an *Open in Colab* link" if repository else "",
        "<!-- colab -->": (
            "**On Colab.** Use the *Open in Colab* link at the top of a chapter. In a first "
            f"cell, install the book's helpers with `!git clone {repository} book && pip install "
            "-q -e book`, then `%cd book/chapters`. Colab already has TensorFlow and Keras; the "
            "data download on first use." if repository else ""),
        "<!-- toctree -->": toctree(found, workshop),
    }
    for marker, replacement in replacements.items():
        if marker not in text:
            raise SiteError(f"site/index.md has lost its {marker} marker")
        text = text.replace(marker, replacement)
    return text


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
    """Each chapter's downloadable .ipynb: the committed one, or the student one (workshop),
    which is refused when a cell of it would need a removed solution (solution_dependencies)."""
    folder = outdir / NOTEBOOKS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    problems = []
    for chapter in found:
        if edition == "workshop":
            notebook = nbformat.read(chapter.notebook, as_version=4)
            problems += solution_dependencies(notebook, f"chapters/{chapter.notebook.name}")
            nbformat.write(student_notebook(notebook), folder / chapter.notebook.name)
        else:
            shutil.copyfile(chapter.notebook, folder / chapter.notebook.name)
    if problems:
        raise SiteError("a student notebook would fail without its removed solutions (move the "
                        "cell into the solution, or define the name outside it):\n" + "\n".join(problems))


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
