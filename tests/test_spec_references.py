"""Every reference to the specification resolves: code, docstrings, tests and docs cite
``docs/spec.md §x.y``, that section exists, and nothing cites a document outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC_FILE = ROOT / "docs" / "spec.md"
SOURCES = [
    *sorted((ROOT / "python").rglob("*.py")),
    *sorted((ROOT / "python").rglob("*.pyi")),
    *sorted((ROOT / "rust").rglob("*.rs")),
    *sorted((ROOT / "tests").glob("*.py")),
    *sorted((ROOT / "benches").glob("*.py")),
    *sorted(ROOT.glob("*.md")),
    *sorted((ROOT / "benches").glob("*.md")),
    *sorted((ROOT / "docs").rglob("*.md")),
]
# Names of documents that are not in the repository (spelled in pieces so this file does not match).
OUTSIDE = re.compile(r"\b(?:" + "|".join(["SP" + "EC", "API_" + "DRAFT", "PAPER" + r"\.md"]) + r")\b")
SECTION = re.compile(r"§(\d+(?:\.\d+)?)")


def spec_sections() -> set[str]:
    headings = re.findall(r"^#{2,4} §(\d+(?:\.\d+)?)\s", SPEC_FILE.read_text(encoding="utf-8"), flags=re.M)
    return set(headings)


def test_spec_has_numbered_sections():
    sections = spec_sections()
    assert {"0", "1", "2", "3", "4", "5", "6"} <= sections
    assert len(sections) > 40


def test_sources_were_found():
    assert len(SOURCES) > 50
    assert any(p.suffix == ".rs" for p in SOURCES) and any(p.suffix == ".py" for p in SOURCES)


def test_no_reference_to_documents_outside_the_repository():
    bad = []
    for path in SOURCES:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if OUTSIDE.search(line):
                bad.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not bad, "references to documents that are not in the repository:\n" + "\n".join(bad)


def test_every_spec_reference_resolves():
    sections = spec_sections()
    cited, bad = 0, []
    for path in SOURCES:
        if path == SPEC_FILE:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "spec.md" not in line:
                continue
            found = SECTION.findall(line)
            cited += len(found)
            missing = [s for s in found if s not in sections]
            if missing:
                bad.append(f"{path.relative_to(ROOT)}:{number}: §{', §'.join(missing)}: {line.strip()}")
    assert not bad, "references to sections docs/spec.md does not have:\n" + "\n".join(bad)
    assert cited > 40, f"only {cited} section references found; were the citations rewritten?"
