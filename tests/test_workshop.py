"""The workshop edition's student notebooks run: no cell after a removed solution needs a name
only the solution defined (a static check, on every chapter), and the shortest chapter's student
notebook is executed top to bottom on the book's kernel settings.

The execution test trains models, so it is heavy (about 35 s on 2 CPU cores); the static
checks take well under a second.
"""

from __future__ import annotations

import ast
import re
import time

import nbformat
import pytest
from nbclient import NotebookClient

from tools import notebooks
from tools import site as book_site


@pytest.fixture(scope="module")
def chapters() -> list[book_site.Chapter]:
    return book_site.chapters()


def _workshop_notebook(*cells: tuple[str, str]) -> nbformat.NotebookNode:
    """A notebook from ("md" | "code", source) pairs."""
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(source) if kind == "md" else nbformat.v4.new_code_cell(source)
        for kind, source in cells])


# --------------------------------------------------------------------------- the static check

SYNTHETIC = _workshop_notebook(
    ("md", "## Setup"),
    ("code", "import numpy as np\nmodel = 'kept'\nscores = {}"),
    ("md", "## Exercises\n\n```{exercise} One\n:label: ex-1\n\nDo it.\n```\n\n"
           "````{solution-start} ex-1\n:class: dropdown\n````\n\nThe solution's prose."),
    ("code", "from math import tau\n"
             "model = 'the solution overwrites it'\n"
             "secret = 42\n"
             "def helper(x):\n    return x\n"
             "for step in range(3):\n    scores[step] = step\n"
             "best = max(scores)\n"
             "total = 0"),
    ("md", "````{solution-end}\n````\n\n```{exercise} Two\n:label: ex-2\n\nThe student's turn.\n```"),
    # Each kept cell below either needs the removed solution (reported) or does not.
    ("code", "print(secret)"),  # reported: only the solution defines it
    ("code", "print(model, np.pi, scores)"),  # fine: a kept cell defined them before
    ("code", "best = 1\nprint(best)"),  # fine: bound before it is used
    ("code", "squares = [step * step for step in range(2)]"),  # fine: the comprehension's own `step`
    ("code", "def report():\n    return helper(1)"),  # reported: the function uses `helper`
    ("code", "%time tau * 2"),  # reported: the code of a %time magic is kernel code
    ("code", "total += 1"),  # reported: += reads `total` first
    ("code", "print(secret)"),  # fine: reported once above already
)


def test_the_check_reports_each_use_of_a_removed_solution():
    problems = book_site.solution_dependencies(SYNTHETIC, "synthetic")
    print("\n".join(problems))
    reported = [re.search(r"uses '(\w+)'", problem).group(1) for problem in problems]
    assert reported == ["secret", "helper", "tau", "total"], problems
    assert problems[0].startswith("synthetic: cell 6 ('print(secret)') uses 'secret'")
    assert "removed solution in cell 4" in problems[0]


def test_the_check_passes_once_the_name_is_defined_outside_the_solution():
    fixed = nbformat.from_dict(SYNTHETIC)
    fixed.cells[1].source += "\nfrom math import tau\nsecret = 0\ntotal = 0\ndef helper(x):\n    return x"
    assert book_site.solution_dependencies(fixed, "fixed") == []


def test_a_cell_that_does_not_parse_is_an_error_not_a_pass():
    broken = _workshop_notebook(("code", "def f(:\n    pass"))
    with pytest.raises(book_site.SiteError, match="broken: cell 1 does not parse"):
        book_site.solution_dependencies(broken, "broken")


def test_the_workshop_build_refuses_such_a_student_notebook(tmp_path):
    notebook_path = tmp_path / "99_synthetic.ipynb"
    nbformat.write(SYNTHETIC, notebook_path)
    chapter = book_site.Chapter(notebook=notebook_path, docname="chapters/99_synthetic", title="Synthetic",
                                reading_minutes=None, cpu_seconds=None, headline_label="", time_text="")
    with pytest.raises(book_site.SiteError, match=r"(?s)would fail without.*99_synthetic\.ipynb: cell 6"):
        book_site.write_notebooks("workshop", [chapter], tmp_path / "site")


def test_no_student_notebook_needs_a_removed_solution(chapters):
    for chapter in chapters:
        notebook = nbformat.read(chapter.notebook, as_version=4)
        assert book_site.solution_dependencies(notebook, chapter.stem) == []


def _names_only_solutions_define(notebook: nbformat.NotebookNode) -> set[str]:
    """Names bound at the top level of a removed solution cell that no kept cell even mentions:
    an oracle independent of the checker (plain ast, and words in the kept cells' text)."""
    kept = {cell.source for cell in book_site.student_notebook(notebook).cells if cell.cell_type == "code"}
    removed = [cell.source for cell in notebook.cells if cell.cell_type == "code" and cell.source not in kept]
    kept_words = set(re.findall(r"\w+", "\n".join(kept)))
    names = set()
    for source in removed:
        for statement in ast.parse(source).body:
            if isinstance(statement, (ast.FunctionDef, ast.ClassDef)):
                names.add(statement.name)
            elif isinstance(statement, ast.Assign):
                names.update(t.id for t in statement.targets if isinstance(t, ast.Name))
    return names - kept_words


def test_the_check_catches_a_cell_added_after_each_chapters_solutions(chapters):
    """On the real chapters: a cell appended after the exercises that uses what only the
    solutions define is reported, name by name."""
    for chapter in (c for c in chapters if c.exercises):
        notebook = nbformat.read(chapter.notebook, as_version=4)
        names = sorted(_names_only_solutions_define(notebook))
        assert names, f"{chapter.stem}: its solutions define no name of their own"
        notebook.cells.append(nbformat.v4.new_code_cell(f"print({', '.join(names)})"))
        problems = book_site.solution_dependencies(notebook, chapter.stem)
        assert [re.search(r"uses '(\w+)'", p).group(1) for p in problems] == names, chapter.stem


# --------------------------------------------------------------------------- a student notebook runs

def _shortest(chapters: list[book_site.Chapter]) -> book_site.Chapter:
    """The chapter whose last recorded run (metadata book_run.seconds) was the shortest."""
    timed = [c for c in chapters if c.run and c.run.get("seconds")]
    assert timed, "no chapter records its run time: run `python3 book.py sync`"
    return min(timed, key=lambda c: c.run["seconds"])


def test_the_shortest_chapters_student_notebook_runs(chapters, tmp_path, monkeypatch):
    """The student notebook, built by the site's own function, runs top to bottom on a fresh
    kernel with the book's settings (tools/ipython), from a folder of its own, as on a
    participant's machine. Every cell must run: a workshop's "Run all" must not stop at an
    exercise. (No chapter has a student cell that raises on purpose; one that must would be
    tagged `raises-exception`, which nbclient and JupyterLab let pass.)"""
    chapter = _shortest(chapters)
    student = book_site.student_notebook(nbformat.read(chapter.notebook, as_version=4))
    for key, value in notebooks.kernel_environment().items():
        monkeypatch.setenv(key, value)  # the kernel inherits this process's environment
    backend = notebooks.os.environ.get("KERAS_BACKEND", "tensorflow")
    client = NotebookClient(student, timeout=notebooks.CELL_TIMEOUT.get(backend, 600),
                            kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, naming the cell, at the first error
    seconds = time.perf_counter() - start
    print(f"\n{chapter.stem}: student notebook ran in {seconds:.1f} s "
          f"(the full chapter: {chapter.run['seconds']} s)")
    code = [cell for cell in student.cells if cell.cell_type == "code" and cell.source.strip()]
    assert code and all(cell.execution_count for cell in code), "a code cell did not run"
    errors = [cell.source[:60] for cell in code
              if any(output.output_type == "error" for output in cell.outputs)]
    assert not errors, f"{chapter.stem}: cells that raised: {errors}"
