"""Print the README's backend table from the benchmark runs of both backends.

    python benchmarks/run_chapters.py                     # TensorFlow -> benchmarks/results.json
    python benchmarks/run_chapters.py --backend jax       # JAX -> benchmarks/results_jax.json
    python benchmarks/backend_table.py                    # Markdown table for README / site

Lists every chapter timed on JAX next to its TensorFlow row.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent


def rows(name: str) -> dict[str, dict]:
    """Chapter stem -> benchmark row, from one results file."""
    path = RESULTS / name
    if not path.exists():
        sys.exit(f"{path} is missing: run benchmarks/run_chapters.py first (see this file's docstring)")
    return {row["chapter"]: row for row in json.loads(path.read_text())["chapters"]}


def main() -> int:
    tensorflow, jax = rows("results.json"), rows("results_jax.json")
    print("| chapter | backend | wall s (2 CPU cores) | headline |")
    print("|---|---|---|---|")
    for chapter in sorted(jax):
        for backend, row in (("TensorFlow", tensorflow.get(chapter)), ("JAX", jax[chapter])):
            if row is None:
                continue
            headline = row["headline"]
            result = f"{headline['label']}: {headline['value']:.3f}" if headline else "-"
            print(f"| {chapter} | {backend} | {row['seconds']:.0f} | {result} |")
    total = {name: sum(r["seconds"] for c, r in table.items() if c in jax)
             for name, table in (("TensorFlow", tensorflow), ("JAX", jax))}
    print(f"\nSame chapters, in all: TensorFlow {total['TensorFlow']:.0f} s, JAX {total['JAX']:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
