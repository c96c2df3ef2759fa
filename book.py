#!/usr/bin/env python3
"""Set up and run the book with one command. Needs only Python 3.11 (3.11.5 or later) or 3.12.

    python book.py build    # set up, execute each chapter that changed (reuse the others' .ipynb),
                            #   render the site into _build/html/, print a table
    python book.py test     # set up, then run the test suite (every chapter re-executed by nbval,
                            #   the site built and read by a real browser; the Keras chapters
                            #   again on JAX unless a receipt says they passed there unchanged;
                            #   --all-backends ignores receipts)
    python book.py site     # only render the site into _build/html/ from the committed notebooks
    python book.py workshop # the workshop edition into _build/workshop/: solutions hidden,
                            #   student notebooks, an instructor page
    python book.py sync [chapters/NN_slug.md ...]   # re-execute chapters, rewrite their .ipynb
    python book.py bench    # time every chapter without rewriting anything
    python book.py prefetch # only fill the Keras cache

"Set up" means: a virtual environment in .venv/ with the pinned packages
(constraints.txt), then the Keras cache filled by `python -m helpers.prefetch`,
from local folders where they exist (Debian's dataset packages, ../shared/assets,
BOOK_DATA_DIRS) and by download otherwise. Each step is skipped when done.
Set BOOK_OFFLINE=1 to forbid downloads (the test suite then needs local files).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import venv
import xml.etree.ElementTree as ElementTree
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
INSTALL_STAMP = VENV / ".book-installed"

# Folders that may already hold the book's data (checked in this order).
LOCAL_DATA_DIRS = [
    Path("/usr/share/datasets/fashion-mnist"),  # Debian: apt-get install dataset-fashion-mnist
    ROOT.parent / "shared" / "assets",  # the project's shared folder, beside the checkout
]


def run(*command: str | Path) -> None:
    """Run a command from the repository root; stop with its exit status if it fails."""
    print("$", " ".join(str(part) for part in command), flush=True)
    status = subprocess.call([str(part) for part in command], cwd=ROOT)
    if status != 0:
        sys.exit(status)


def install_fingerprint() -> str:
    """Changes whenever what must be installed changes."""
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "constraints.txt"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def set_up_environment() -> None:
    """Create .venv and install the book with its test tools, pinned by constraints.txt."""
    if not PYTHON.exists():
        print(f"Creating a virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if INSTALL_STAMP.exists() and INSTALL_STAMP.read_text() == install_fingerprint():
        return
    run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(PYTHON, "-m", "pip", "install", "--quiet", "-c", "constraints.txt", "-e", ".[dev]")
    INSTALL_STAMP.write_text(install_fingerprint())


def prefetch() -> None:
    """Fill the Keras cache with every file the book reads."""
    extra = [Path(p) for p in os.environ.get("BOOK_DATA_DIRS", "").split(os.pathsep) if p]
    folders = [folder for folder in extra + LOCAL_DATA_DIRS if folder.is_dir()]
    flags = [arg for folder in folders for arg in ("--from", folder)]
    if os.environ.get("BOOK_OFFLINE") == "1":
        flags.append("--offline")
    run(PYTHON, "-m", "helpers.prefetch", *flags)


def _pytest_counts(junit_xml: Path) -> tuple[int, int, int]:
    """(passed, failed, skipped) from a pytest JUnit XML report; failed counts errors too."""
    if not junit_xml.exists():
        return 0, 0, 0
    root = ElementTree.parse(junit_xml).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    return total - failed - skipped, failed, skipped


def test_both_backends(pytest_args: list[str]) -> None:
    """The whole suite on TensorFlow, then the Keras chapters again on JAX; fail if either fails.

    The JAX pass executes each chapter whose book.backends lists jax (every cell must run, so
    every checkpoint holds with the same floors; stored outputs, which come from TensorFlow, are
    not compared). It skips a chapter whose receipt in tests/receipts/jax.json matches its
    current inputs (tools/receipts.py says which); `--all-backends` runs them all regardless.
    """
    all_backends = "--all-backends" in pytest_args
    pytest_args = [arg for arg in pytest_args if arg != "--all-backends"]
    report = ROOT / "_build" / "test-results" / "tensorflow.xml"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.unlink(missing_ok=True)
    tensorflow_status = subprocess.call(
        [str(PYTHON), "-m", "pytest", f"--junitxml={report}", *pytest_args], cwd=ROOT)
    jax_summary = report.with_name("jax.json")
    jax_summary.unlink(missing_ok=True)
    jax_command = [PYTHON, "-m", "tools.notebooks", "backend-pass", "--backend", "jax",
                   "--summary", jax_summary, *(["--ignore-receipts"] if all_backends else [])]
    print("$", " ".join(str(part) for part in jax_command), flush=True)
    jax_status = subprocess.call([str(part) for part in jax_command], cwd=ROOT)
    jax = json.loads(jax_summary.read_text()) if jax_summary.exists() else {
        "passed": 0, "failed": 1, "skipped": 0}  # the pass itself crashed
    passed, failed, skipped = _pytest_counts(report)
    print(f"TensorFlow pass: {'passed' if tensorflow_status == 0 else 'FAILED'}; "
          f"JAX pass: {'passed' if jax_status == 0 else 'FAILED'} "
          f"({jax['passed'] + jax['failed']} chapters run, {jax['skipped']} skipped by receipt)")
    # One closing line for the whole run, both passes counted (a chapter skipped by receipt
    # counts as skipped, not passed).
    print(f"book: {passed + jax['passed']} passed, {failed + jax['failed']} failed, "
          f"{skipped + jax['skipped']} skipped", flush=True)
    sys.exit(tensorflow_status or jax_status)


def check_python() -> None:
    """Stop with what to install when this Python cannot run the pinned packages."""
    if not (3, 11, 5) <= sys.version_info[:3] < (3, 13):
        sys.exit(f"book.py needs Python 3.11.5 or later, or 3.12 (the pinned packages, see "
                 f"pyproject.toml); this is {sys.version.split()[0]} at {sys.executable}. Install "
                 f"one of those and run it, e.g. `python3.12 book.py test`.")


def main(argv: list[str]) -> None:
    action, rest = (argv[0], argv[1:]) if argv else ("", [])
    if action not in {"build", "test", "sync", "bench", "prefetch", "site", "workshop"}:
        print(__doc__)
        sys.exit(2)
    check_python()
    set_up_environment()
    if action not in {"site", "workshop"}:  # rendering reads the committed notebooks, no data
        prefetch()
    if action == "build":
        run(PYTHON, "-m", "tools.site", "book", *rest)
    elif action in {"site", "workshop"}:
        run(PYTHON, "-m", "tools.site", action, *rest)
    elif action == "test":
        test_both_backends(rest)
    elif action == "sync":
        run(PYTHON, "-m", "tools.notebooks", "sync", *rest)
    elif action == "bench":
        run(PYTHON, "benchmarks/run_chapters.py", *rest)


if __name__ == "__main__":
    main(sys.argv[1:])
