"""Shared test set-up (root, so it also applies when only chapters/ is collected): nbval's kernels run with the book's kernel settings."""

import os

from tools.notebooks import kernel_environment

# nbval starts each chapter's kernel from this process's environment; give it
# the same settings the sync command uses, so fresh outputs match stored ones.
os.environ.update(kernel_environment())
