"""Sphinx configuration of the repcompress documentation site.

Build (from the repository root; CI runs exactly this, warnings are errors):

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The API reference is generated from the docstrings of the installed package (autodoc, numpydoc);
the example notebooks in ``examples/`` are executed during the build (myst-nb).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import repcompress

ROOT = Path(__file__).resolve().parent.parent

# The notebooks live in examples/ (outside the Sphinx source directory): each build copies them into
# docs/examples/ (ignored by git), so examples/ stays the single copy that is edited and tested.
_NOTEBOOKS = ROOT / "docs" / "examples"
_NOTEBOOKS.mkdir(exist_ok=True)
for _old in _NOTEBOOKS.glob("*.ipynb"):
    _old.unlink()
for _notebook in sorted((ROOT / "examples").glob("*.ipynb")):
    shutil.copyfile(_notebook, _NOTEBOOKS / _notebook.name)

project = "repcompress"
author = "the repcompress authors"
copyright = "2026, the repcompress authors"
release = repcompress.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
    # MathJax 3 served from the site itself (_static/mathjax), not a CDN: the site and its browser
    # test (tests/test_docs_site.py) work without network access.
    "sphinx-mathjax-offline",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "figures/README*"]
templates_path: list[str] = []

# --- MyST and notebooks -------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
# Every notebook runs at each build, so a notebook that no longer runs fails the build.
nb_execution_mode = "force"
nb_execution_timeout = 300
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_kernel_rgx_aliases = {".*": "python3"}

# --- API reference ------------------------------------------------------------------------------
autodoc_member_order = "groupwise"
# Types are stated in each docstring's numpydoc Parameters section; the annotations (mostly
# ``Any`` for array-likes) would only repeat them less precisely.
autodoc_typehints = "none"
# Members are the names of each module's ``__all__`` (data such as ``METRICS`` included).
autodoc_default_options = {"members": True, "undoc-members": True}
# ``forward`` of the torch layers would otherwise show torch's own ``Module.forward`` docstring.
autodoc_inherit_docstrings = False
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# Broken references are errors (sphinx -W). Only names from outside the package are ignored:
# there is no network in CI for intersphinx inventories of numpy, pandas and torch.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:class", r"(numpy|np|pandas|pd|torch|nn|matplotlib|hypothesis|scipy)\..*"),
]

# --- HTML ---------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"repcompress {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path: list[str] = []
html_show_sourcelink = False
