"""Time every chapter end to end on a fresh kernel and report its headline result.

    python benchmarks/run_chapters.py [chapters/NN_slug.md ...] [--json FILE] [--write-notebooks]
                                      [--backend tensorflow|jax]

Prints a table (chapter, wall seconds, headline metric) and writes the same
rows as JSON (default benchmarks/results.json). Wall seconds run from the
kernel's start to the end of the last cell, so they include importing
TensorFlow. Each chapter's budget is the `book.cpu_seconds` of its front
matter (what it promises readers on 2 CPU cores); a chapter over budget is
marked, not failed: timing belongs in a benchmark, not in a test.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.notebooks import (  # noqa: E402
    ROOT, chapter_sources, execute_chapter, result_row, write_pair, write_results)

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/run_chapters.py")
    parser.add_argument("sources", nargs="*", type=Path, help="chapter .md files (default: all)")
    parser.add_argument("--json", type=Path, default=None,
                        help="where to write the rows (default benchmarks/results[_jax].json)")
    parser.add_argument("--write-notebooks", action="store_true",
                        help="also write each executed notebook as the chapter's .ipynb")
    parser.add_argument("--backend", choices=["tensorflow", "jax"],
                        help="Keras backend for the kernels (sets KERAS_BACKEND; default: as set, "
                             "else tensorflow). Only the tensorflow run may write notebooks.")
    args = parser.parse_args(argv)
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
    if args.write_notebooks and os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        parser.error("--write-notebooks: the committed outputs come from the TensorFlow backend")
    if args.json is None:
        suffix = "" if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow" else "_jax"
        args.json = ROOT / "benchmarks" / f"results{suffix}.json"

    rows = []
    print(f"{'chapter':<32} {'seconds':>8} {'budget':>7}  headline", flush=True)
    for source in [s.resolve() for s in args.sources] or chapter_sources():
        notebook, seconds, headline = execute_chapter(source)
        if args.write_notebooks:
            write_pair(source, notebook)
        row = result_row(source, notebook, seconds, headline)
        rows.append(row)
        budget = row["budget_seconds"]
        over = " OVER" if budget and seconds > budget else ""
        result = f"{headline['label']} = {headline['value']:.3f}" if headline else "-"
        print(f"{source.stem:<32} {seconds:>8.1f} {budget or '-':>7}{over}  {result}", flush=True)
    write_results(rows, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
