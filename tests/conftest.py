"""Fixtures shared by the helper tests (the root conftest.py sets up nbval's kernels)."""

import pytest

from helpers import cache


@pytest.fixture(autouse=True)
def no_mirror(monkeypatch):
    """Tests never download from a mirror the developer's shell may name; the online test sets its own."""
    monkeypatch.delenv(cache.MIRROR_VARIABLE, raising=False)


@pytest.fixture()
def keras_home(tmp_path, monkeypatch):
    """An empty Keras cache for one test: `$KERAS_HOME` points at a folder that does not exist yet."""
    home = tmp_path / "keras-home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home
