"""The documentation site builds with warnings as errors and renders in a real browser.

The site is built once per session into a temporary directory from this checkout's docs/ (the
notebooks are not executed here: tests/test_notebooks.py runs them, and `.ci/run`'s own build of the
site executes them into the pages). Headless Chromium then loads the built pages from disk, runs
their JavaScript (the theme, MathJax) and dumps the resulting DOM, on which the assertions are made.
"""

import html
import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

from docs_support import require_browser, require_module

ROOT = Path(__file__).resolve().parent.parent
# The modules whose public names the API reference must document (each module's __all__).
DOCUMENTED = {
    "repcompress": "api/repcompress.html",
    "repcompress.torch": "api/torch.html",
    "repcompress.testing": "api/testing.html",
    "repcompress.testing.strategies": "api/strategies.html",
    "repcompress.analysis": "api/analysis.html",
    "repcompress.plots": "api/plots.html",
    "repcompress.estimate": "api/estimate.html",
    "repcompress.sweeps": "api/sweeps.html",
    "repcompress.tidy": "api/tidy.html",
}


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    require_module("sphinx", "building the documentation")
    require_module("myst_nb", "building the documentation")
    out = tmp_path_factory.mktemp("site")
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",  # warnings (a broken reference, an unknown docstring section) are errors
        "--keep-going",
        "-q",
        "-b",
        "html",
        "-d",
        str(out / "doctrees"),
        "-D",
        "nb_execution_mode=off",
        str(ROOT / "docs"),
        str(out / "html"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"sphinx failed:\n{done.stdout[-5000:]}\n{done.stderr[-5000:]}"
    return out / "html"


def rendered(page: Path) -> str:
    """The DOM of ``page`` after Chromium ran its scripts (MathJax typesets asynchronously: the
    virtual time budget lets it finish before the DOM is dumped)."""
    browser = require_browser()
    command = [
        browser,
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",  # containers often have a small /dev/shm
        "--virtual-time-budget=10000",
        "--dump-dom",
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"chromium failed on {page}:\n{done.stderr[-3000:]}"
    return done.stdout


def text_of(markup: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", markup)))


def test_index_renders_with_title_contents_and_an_equation(site):
    dom = rendered(site / "index.html")
    title = re.search(r"<title>(.*?)</title>", dom, flags=re.S)
    assert title and "repcompress" in title.group(1)
    for section in ("Getting started", "User guide", "Example notebooks", "API reference", "Changelog"):
        assert section in dom
    # MathJax replaced the TeX of the equation on the page with its rendered output.
    assert re.search(r"<mjx-container[^>]*display=\"true\"", dom), "no rendered display equation on the index"
    assert "<mjx-math" in dom


def test_api_page_renders_a_function_signature(site):
    dom = rendered(site / "api" / "repcompress.html")
    start = dom.find('id="repcompress.mutual_info"')
    assert start >= 0, "repcompress.mutual_info is not on its API page"
    signature = text_of(dom[start : dom.find("</dt>", start)])
    assert "repcompress.mutual_info(x, y, *, k=3, estimator='ksg1'" in signature
    # The docstring follows the signature: its formula and its numpydoc sections.
    body = text_of(dom[start : start + 20_000])
    assert "Kraskov" in body and "Parameters" in body and "Returns" in body


def test_guide_equations_render(site):
    dom = rendered(site / "guide" / "knn.html")
    assert dom.count("<mjx-container") >= 2  # KSG-1 and KSG-2
    assert "\\psi(k)" not in text_of(dom)  # no TeX source left unrendered


def public_names(module) -> list[str]:
    """The module's ``__all__``; without one, the functions and classes it defines (autodoc's rule)."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == module.__name__
    ]


@pytest.mark.parametrize("module", sorted(DOCUMENTED))
def test_every_public_name_is_in_the_api_reference(site, module):
    if module == "repcompress.torch":
        require_module("torch", "the API reference of repcompress.torch")
    names = public_names(importlib.import_module(module))
    assert names, f"{module}: no public names found"
    page = (site / DOCUMENTED[module]).read_text(encoding="utf-8")
    missing = [name for name in names if f'id="{module}.{name}"' not in page]
    assert not missing, f"{module}: not documented in {DOCUMENTED[module]}: {missing}"


# Modules of the package that have no page in the API reference, and why.
NOT_IN_API = {
    "repcompress.cli": "the command line, documented by its --help and the README",
    "repcompress.reproduce": "the reproductions' commands, described in docs/guide/reproductions.md",
}


def test_every_public_module_has_an_api_page():
    """A module added to the package (one not starting with ``_``) gets a page of the API reference,
    or a reason in NOT_IN_API; its public names are then checked by the test above."""
    pages = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs" / "api").glob("*.rst"))
    on_pages = set(re.findall(r"^\.\. automodule:: (\S+)", pages, flags=re.M))
    package = ROOT / "python" / "repcompress"
    modules = {
        f"repcompress.{p.stem}"
        for p in package.iterdir()
        if not p.name.startswith("_") and (p.suffix == ".py" or (p / "__init__.py").is_file())
    }
    assert len(modules) > 10
    missing = sorted(modules - on_pages - set(NOT_IN_API))
    assert not missing, f"modules without a page in docs/api/: {missing}"


def test_every_api_page_is_listed():
    pages = {p.stem for p in (ROOT / "docs" / "api").glob("*.rst")}
    assert {Path(p).stem for p in DOCUMENTED.values()} <= pages


def test_example_notebooks_are_pages_of_the_site(site):
    for name in ("01_known_mi", "02_tracking", "03_paper_analysis"):
        assert (site / "examples" / f"{name}.html").is_file()
