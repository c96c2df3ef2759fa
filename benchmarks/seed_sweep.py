"""How far a chapter's results move with its seed: run the whole chapter once per seed.

    python benchmarks/seed_sweep.py chapters/04_fine_tuning.md --seeds 42 1 2 \
        --report fine_tuned_test_accuracy fine_class_test_accuracy [--json FILE]

Executes the chapter exactly as written (no second copy of its recipe) on a fresh kernel per
seed, with every `keras.utils.set_random_seed(42)` replaced by the seed, and running on past a
failing cell (its variants never replace the book's shared models). Prints, per seed, the
variables named with --report and which checkpoint cells failed, then each variable's minimum
and maximum. A chapter's accuracy floors are set below the minimum seen here (and the chapter's
comment next to the floor says so): a floor inside the spread of seeds would fail on another
machine whose arithmetic lands on another draw.

With --remake-models, a chapter that loads the book's shared models (chapter 05) first gets them
retrained with the same seed by their own chapter, into a scratch Keras cache; the book's cache
is not touched. Honours KERAS_BACKEND. Run it alone on the machine; each seed costs one whole
chapter (two with --remake-models).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers.cache import keras_home  # noqa: E402
from tools.notebooks import ROOT, execute_chapter  # noqa: E402
from tools.receipts import model_makers  # noqa: E402


def failed_cells(notebook) -> list[str]:
    """The first line of each code cell that raised, with the error's name and message."""
    failures = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                first_line = cell.source.strip().splitlines()[0][:60] if cell.source.strip() else ""
                failures.append(f"{first_line!r}: {output['ename']}: {output['evalue'][:120]}")
    return failures


def scratch_keras_home(seed: int) -> Path:
    """A new Keras cache that links to the real one's data and weights but has no book models."""
    real, scratch = keras_home(), Path(tempfile.mkdtemp(prefix=f"book-seed-{seed}-"))
    for entry in real.iterdir():
        if entry.name != "models":
            (scratch / entry.name).symlink_to(entry)
    (scratch / "models").mkdir()
    for entry in (real / "models").iterdir() if (real / "models").is_dir() else ():
        if entry.name != "keras_soup_to_nuts":  # the book's models: made again below
            (scratch / "models" / entry.name).symlink_to(entry)
    return scratch


def make_models_with_seed(source: Path, seed: int) -> None:
    """Run the chapters that train the models `source` loads, with `seed`, into a scratch cache."""
    os.environ["KERAS_HOME"] = str(scratch_keras_home(seed))
    for maker in model_makers(source):
        _, seconds, _ = execute_chapter(ROOT / maker, seed=seed, keep_models=True)
        print(f"seed {seed:>4}  {maker} made its models in {seconds:.0f} s "
              f"(into {os.environ['KERAS_HOME']})", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a chapter .md")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--report", nargs="+", required=True, help="variables to print per seed")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--remake-models", action="store_true",
                        help="for a chapter that loads the book's models: first retrain them with "
                             "each seed (their chapter, run into a scratch Keras cache)")
    args = parser.parse_args(argv)
    rows = []
    real_home = os.environ.get("KERAS_HOME")
    for seed in args.seeds:
        if args.remake_models:
            make_models_with_seed(args.source.resolve(), seed)
        notebook, seconds, _ = execute_chapter(args.source.resolve(), seed=seed, allow_errors=True,
                                               report=tuple(args.report))
        values = notebook.metadata["book_run"].get("report", {})
        failures = failed_cells(notebook)
        rows.append({"seed": seed, "seconds": round(seconds, 1), **values, "failed_cells": failures})
        shown = "  ".join(f"{name} {values[name]:.4f}" for name in args.report if name in values)
        print(f"seed {seed:>4}  {seconds:6.1f} s  {shown}", flush=True)
        for failure in failures:
            print(f"           failed: {failure}", flush=True)
    if real_home is None:
        os.environ.pop("KERAS_HOME", None)
    else:
        os.environ["KERAS_HOME"] = real_home
    for name in args.report:
        seen = [row[name] for row in rows if name in row]
        if seen:
            print(f"{name}: min {min(seen):.4f}, max {max(seen):.4f} over {len(seen)} seeds")
    if args.json:
        target = args.json.resolve()
        target.write_text(json.dumps({"chapter": args.source.name, "rows": rows}, indent=2) + "\n")
        print(f"Wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
