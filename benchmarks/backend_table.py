"""Print the README's backend table from what the repository records of its last runs.

    python benchmarks/backend_table.py            # Markdown table for README / site

TensorFlow rows come from each chapter's executed notebook (`metadata.book_run`, written by
`book.py sync`: the run whose outputs are committed); JAX rows from the JAX pass's receipts
(`tests/receipts/jax.json`: the last run that passed there with the chapter's current inputs;
see tools/receipts.py). A chapter whose JAX receipt is stale is marked, not dropped. To time
chapters again without the tests: `python3 book.py bench [--backend jax] [chapters/...]`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools import receipts  # noqa: E402
from tools.notebooks import chapter_backends, chapter_sources  # noqa: E402


def headline_cell(headline: dict | None) -> str:
    return f"{headline['label']}: {headline['value']:.3f}" if headline else "-"


def main() -> int:
    jax_receipts = receipts.load(receipts.receipts_path("jax"))
    print("| chapter | backend | wall s (2 CPU cores) | headline |")
    print("|---|---|---|---|")
    totals = {"TensorFlow": 0.0, "JAX": 0.0}
    for source in chapter_sources():
        if "jax" not in chapter_backends(source):
            continue
        run = json.loads(source.with_suffix(".ipynb").read_text())["metadata"].get("book_run", {})
        receipt = jax_receipts.get(source.stem)
        stale = receipts.stale_inputs(receipt, receipts.chapter_inputs(source))
        print(f"| {source.stem} | TensorFlow | {run.get('seconds', 0):.0f} | "
              f"{headline_cell(run.get('headline'))} |")
        if receipt is None:
            print(f"| {source.stem} | JAX | - | no receipt yet |")
            continue
        note = f" (receipt stale: {', '.join(stale)})" if stale else ""
        print(f"| {source.stem} | JAX | {receipt['seconds']:.0f} | {headline_cell(receipt['headline'])}{note} |")
        totals["TensorFlow"] += run.get("seconds", 0)
        totals["JAX"] += receipt["seconds"]
    print(f"\nSame chapters, in all: TensorFlow {totals['TensorFlow']:.0f} s, JAX {totals['JAX']:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
