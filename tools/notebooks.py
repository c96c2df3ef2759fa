"""Execute the book's chapters and keep each `.md` / `.ipynb` pair in sync.

    python -m tools.notebooks sync [chapters/01_x.md ...]   # execute, write the .ipynb twins
    python -m tools.notebooks check                         # list pairs that are out of sync
    python -m tools.notebooks backend-pass --backend jax [chapters/01_x.md ...]
                                                            # run them there, skipping those with
                                                            #   a current receipt (tools/receipts.py)

The `.md` (MyST, jupytext) is the source a person edits; the `.ipynb` is the
same notebook executed top to bottom on a fresh kernel, outputs included.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tools import receipts

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"
IPYTHON_DIR = ROOT / "tools" / "ipython"
SYNC_COMMAND = "python book.py sync"
# Seconds a cell may run, per backend (TensorFlow's is also pyproject's nbval option; the JAX
# pass runs through execute_chapter). On TensorFlow a chapter's slowest cell trains for about
# 90 s; on JAX, XLA:CPU's depthwise convolutions make chapter 04's fine-tuning cell take over 10 min.
CELL_TIMEOUT = {"tensorflow": 600, "jax": 1800}
_PROBE_MARK = "BOOK-PROBE:"


def chapter_sources() -> list[Path]:
    """Every chapter source `chapters/NN_slug.md`, in file-name order."""
    return sorted(CHAPTERS.glob("[0-9][0-9]_*.md"))


def backends_in(metadata: dict) -> list[str]:
    """The Keras backends a notebook's metadata says it is tested on (`book.backends`, default TensorFlow)."""
    return list(metadata.get("book", {}).get("backends", ["tensorflow"]))


def chapter_backends(source: Path) -> list[str]:
    """The Keras backends the chapter `source` (.md) is tested on, from its front matter."""
    return backends_in(jupytext.read(source).metadata)


def kernel_environment() -> dict[str, str]:
    """The environment every book kernel runs in (see tools/ipython for why)."""
    env = dict(os.environ)
    env["IPYTHONDIR"] = str(IPYTHON_DIR)
    env.setdefault("PYTHONHASHSEED", "0")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _probe_cell(variables: list[str]) -> nbformat.NotebookNode:
    """A last cell that prints the float value of each of `variables` that the chapter defined."""
    code = (
        "import json as _json\n"
        f"print({_PROBE_MARK!r} + _json.dumps({{_name: float(globals()[_name]) "
        f"for _name in {variables!r} if _name in globals()}}))"
    )
    return nbformat.v4.new_code_cell(code)


def execute_chapter(source: Path, *, seed: int | None = None, allow_errors: bool = False,
                    extra_code: str = "", report: tuple[str, ...] = (),
                    keep_models: bool = False) -> tuple[nbformat.NotebookNode, float, dict | None]:
    """Run the chapter `source` (.md) on a fresh kernel; return (notebook, wall seconds, headline).

    `seed` replaces the chapter's seed (every `keras.utils.set_random_seed(42)`) for a seed sweep,
    and keeps the run from replacing the book's shared models (helpers/book_models.py) unless
    `keep_models` (for a sweep whose $KERAS_HOME is a scratch copy of the cache);
    `allow_errors` runs on past a failing cell (its error stays in that cell's outputs);
    `extra_code` is run as one more cell at the end (its outputs are the notebook's last cell);
    `report` names variables whose values at the end go to the notebook's metadata
    (`book_run.report`), beside the headline variable from the front matter.
    """
    notebook = jupytext.read(source)
    environment = kernel_environment()
    if seed is not None and not keep_models:
        from helpers.book_models import SAVE_VARIABLE  # here: importing it imports Keras

        environment[SAVE_VARIABLE] = "off"
    if seed is not None:
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.source = cell.source.replace("set_random_seed(42)", f"set_random_seed({seed})")
    if extra_code:
        notebook.cells.append(nbformat.v4.new_code_cell(extra_code))
    headline = notebook.metadata.get("book", {}).get("headline")
    probed = list(report) + ([headline["variable"]] if headline else [])
    if probed:
        notebook.cells.append(_probe_cell(probed))
    previous = dict(os.environ)
    os.environ.update(environment)  # the kernel inherits this process's environment
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT.get(os.environ.get("KERAS_BACKEND", "tensorflow"), CELL_TIMEOUT["tensorflow"]),
        kernel_name="python3",
        resources={"metadata": {"path": str(source.parent)}},
        allow_errors=allow_errors,
    )
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        for name in environment.keys() - previous.keys():
            del os.environ[name]
    seconds = time.perf_counter() - start
    values = {}
    if probed:
        printed = "".join(out.get("text", "") for out in notebook.cells.pop().outputs)
        if _PROBE_MARK in printed:  # absent only when allow_errors let a failure through
            values = json.loads(printed.split(_PROBE_MARK, 1)[1])
    result = None
    if headline and headline["variable"] in values:
        result = {"label": headline["label"], "value": round(values[headline["variable"]], 4)}
    # What this run measured, kept in the .ipynb so that `book.py build` can report a chapter
    # it reuses (in sync, not re-executed). pair_problem compares cells only, not this.
    notebook.metadata["book_run"] = {"seconds": round(seconds, 1), "headline": result}
    if report:
        notebook.metadata["book_run"]["report"] = {name: values[name] for name in report if name in values}
    return notebook, seconds, result


def headline_text(headline: dict | None) -> str:
    """'; label value' for a chapter's headline, or nothing when it has none."""
    return f"; {headline['label']} {headline['value']}" if headline else ""


def result_row(source: Path, notebook: nbformat.NotebookNode, seconds: float | None,
               headline: dict | None) -> dict:
    """One chapter's row of the results table: backend, wall seconds, its budget, its headline."""
    return {
        "chapter": source.stem,
        "backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "seconds": round(seconds, 1) if seconds is not None else None,
        "budget_seconds": notebook.metadata.get("book", {}).get("cpu_seconds"),  # its promise
        "headline": headline,
    }


def write_results(rows: list[dict], path: Path) -> None:
    """Write the rows as JSON, with the machine they were measured on."""
    machine = {"cpus": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()}
    path.write_text(json.dumps({"machine": machine, "chapters": rows}, indent=2) + "\n")
    print(f"Wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def write_pair(source: Path, notebook: nbformat.NotebookNode) -> Path:
    """Write the executed `notebook` as the `.ipynb` twin of `source`."""
    target = source.with_suffix(".ipynb")
    jupytext.write(notebook, target, fmt="ipynb")
    return target


def _cells_for_comparison(notebook: nbformat.NotebookNode) -> list[tuple[str, str, list[str]]]:
    return [
        (cell.cell_type, cell.source.strip(), sorted(cell.metadata.get("tags", [])))
        for cell in notebook.cells
    ]


def pair_problem(source: Path) -> str | None:
    """Why the `.ipynb` twin of `source` is out of sync, or None when it is in sync."""
    twin = source.with_suffix(".ipynb")
    fix = f"run `{SYNC_COMMAND} {source.relative_to(ROOT)}`"
    if not twin.exists():
        return f"{twin.name} does not exist: {fix}."
    text_cells = _cells_for_comparison(jupytext.read(source))
    executed = nbformat.read(twin, as_version=4)
    executed_cells = _cells_for_comparison(executed)
    if len(text_cells) != len(executed_cells):
        return (f"{source.name} has {len(text_cells)} cells, {twin.name} has "
                f"{len(executed_cells)}: {fix}.")
    for number, (mine, theirs) in enumerate(zip(text_cells, executed_cells), start=1):
        if mine != theirs:
            first_line = mine[1].splitlines()[0] if mine[1] else "(empty)"
            return (f"cell {number} ({mine[0]}, starting {first_line[:60]!r}) differs between "
                    f"{source.name} and {twin.name}: {fix}.")
    code_counts = [c.execution_count for c in executed.cells if c.cell_type == "code" and c.source.strip()]
    if code_counts != list(range(1, len(code_counts) + 1)):
        return f"{twin.name} was not executed top to bottom on one fresh kernel: {fix}."
    return None


def backend_pass(backend: str, use_receipts: bool = True, sources: list[Path] | None = None,
                 root: Path = ROOT) -> tuple[int, int, int]:
    """Execute every chapter tested on `backend` there; return (passed, failed, skipped).

    Stored outputs come from TensorFlow, so on another backend a chapter passes when every cell
    runs (its checkpoint cells assert the same floors), as nbval's lax mode would judge it. A
    chapter whose receipt matches its current inputs is skipped; one that passes gets a receipt.
    `sources` and `root` default to the book's chapters and repository (tests pass stand-ins).
    """
    previous = os.environ.get("KERAS_BACKEND")
    os.environ["KERAS_BACKEND"] = backend  # the kernels inherit this process's environment
    try:
        return _run_on_backend(backend, use_receipts, sources, root)
    finally:
        if previous is None:
            del os.environ["KERAS_BACKEND"]
        else:
            os.environ["KERAS_BACKEND"] = previous


def _run_on_backend(backend: str, use_receipts: bool, sources: list[Path] | None,
                    root: Path) -> tuple[int, int, int]:
    path = receipts.receipts_path(backend, root)
    passed = failed = skipped = 0
    for source in chapter_sources() if sources is None else sources:
        if backend not in chapter_backends(source):
            continue
        inputs = receipts.chapter_inputs(source, root)
        receipt = receipts.load(path).get(source.stem)
        stale = receipts.stale_inputs(receipt, inputs)
        if use_receipts and not stale:
            print(f"{source.stem}: skipped on {backend}, its inputs are unchanged since it passed "
                  f"there on {receipt['passed']} ({receipt['seconds']} s"
                  f"{headline_text(receipt['headline'])})", flush=True)
            skipped += 1
            continue
        why = "--all-backends" if not use_receipts else (
            "no receipt" if receipt is None else "changed: " + ", ".join(stale))
        print(f"{source.stem}: running on {backend} ({why}) ...", flush=True)
        try:
            _, seconds, headline = execute_chapter(source)
        except CellExecutionError as error:
            print(f"{source.stem}: FAILED on {backend}\n{error}", flush=True)
            failed += 1
            continue
        receipts.record(path, source.stem, inputs, seconds, headline)
        print(f"{source.stem}: passed on {backend} in {seconds:.1f} s{headline_text(headline)}",
              flush=True)
        passed += 1
    return passed, failed, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.notebooks")
    commands = parser.add_subparsers(dest="command", required=True)
    sync = commands.add_parser("sync", help="execute chapters and write their .ipynb twins")
    sync.add_argument("sources", nargs="*", type=Path, help="chapter .md files (default: all)")
    commands.add_parser("check", help="report pairs that are out of sync")
    backend_run = commands.add_parser("backend-pass", help="run a backend's chapters, with receipts")
    backend_run.add_argument("--backend", required=True, choices=["jax", "torch"])
    backend_run.add_argument("sources", nargs="*", type=Path,
                             help="chapter .md files (default: every chapter tested on the backend)")
    backend_run.add_argument("--ignore-receipts", action="store_true",
                             help="run every chapter, even those whose receipt is current")
    backend_run.add_argument("--summary", type=Path, help="also write the counts here as JSON")
    args = parser.parse_args(argv)

    if args.command == "backend-pass":
        passed, failed, skipped = backend_pass(args.backend, use_receipts=not args.ignore_receipts,
                                               sources=[s.resolve() for s in args.sources] or None)
        print(f"{args.backend}: {passed} passed, {failed} failed, {skipped} skipped", flush=True)
        if args.summary:
            args.summary.write_text(json.dumps({"passed": passed, "failed": failed, "skipped": skipped}))
        return 1 if failed else 0

    if args.command == "check":
        problems = [p for p in map(pair_problem, chapter_sources()) if p]
        print("\n".join(problems) or "Every chapter pair is in sync.")
        return 1 if problems else 0
    for source in [s.resolve() for s in args.sources] or chapter_sources():
        if source.suffix != ".md":
            parser.error(f"{source} is not a chapter source (.md)")
        notebook, seconds, headline = execute_chapter(source)
        target = write_pair(source, notebook)
        print(f"{target.relative_to(ROOT)}: executed in {seconds:.1f} s{headline_text(headline)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
