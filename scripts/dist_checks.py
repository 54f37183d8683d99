"""The checks of scripts/build-dist that read the artifacts themselves; run with the tool venv's
Python (pyelftools comes with auditwheel).

    python scripts/dist_checks.py glibc WHEEL MAX_GLIBC     every GLIBC symbol version the wheel's
                                                            extensions require; fails above MAX_GLIBC
    python scripts/dist_checks.py sdist SDIST               the sdist holds the tracked sources a
                                                            build needs and nothing untracked, nor
                                                            benchmark results, figures, docs, tests
    python scripts/dist_checks.py version WHEEL SDIST       both carry Cargo.toml's version

Each prints what it found and exits non-zero on a failed check.
"""

from __future__ import annotations

import email.parser
import io
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: build-dist installs tomli into the tool venv
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent

# What a source build reads besides rust/ and python/: the crate's manifest and lock file (the
# exact dependency versions), the build configuration, and the README (the metadata's description).
BUILD_FILES = ("Cargo.toml", "Cargo.lock", "pyproject.toml", "README.md")
# Kept out of the sdist (pyproject.toml, [tool.maturin] exclude): they live in the repository.
LEFT_OUT_DIRECTORIES = ("benches", "docs", "examples", "tests", "scripts", ".ci")
FIGURES = re.compile(r"\.(png|svg|pdf|jpe?g|gif)$", re.IGNORECASE)


def fail(message: str) -> None:
    print(f"FAILED: {message}")
    raise SystemExit(1)


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def glibc_versions(elf: ELFFile) -> set[str]:
    """The GLIBC_x.y versions the object needs from libc and its siblings (.gnu.version_r)."""
    found = set()
    for section in elf.iter_sections():
        if isinstance(section, GNUVerNeedSection):
            for _needed, auxiliaries in section.iter_versions():
                for aux in auxiliaries:
                    if aux.name.startswith("GLIBC_") and re.fullmatch(r"GLIBC_\d+(\.\d+)*", aux.name):
                        found.add(aux.name.removeprefix("GLIBC_"))
    return found


def check_glibc(wheel: str, maximum: str) -> None:
    with zipfile.ZipFile(wheel) as archive:
        extensions = [name for name in archive.namelist() if name.endswith(".so") or ".so." in name]
        if not extensions:
            fail(f"{wheel} holds no shared object")
        highest = "0"
        for name in extensions:
            elf = ELFFile(io.BytesIO(archive.read(name)))
            versions = sorted(glibc_versions(elf), key=version_key)
            if not versions:
                fail(f"{name}: no GLIBC symbol versions found (not a glibc-linked object?)")
            print(f"{name}: GLIBC versions required: {', '.join(versions)}")
            highest = max(highest, versions[-1], key=version_key)
    print(f"highest GLIBC symbol version: GLIBC_{highest} (allowed: up to GLIBC_{maximum})")
    if version_key(highest) > version_key(maximum):
        fail(f"GLIBC_{highest} is newer than the policy's GLIBC_{maximum}")


def tracked_files() -> set[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return {name for name in listed.decode().split("\0") if name}


def check_sdist(sdist: str) -> None:
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if m.isfile()]
    top = {PurePosixPath(m.name).parts[0] for m in members}
    if len(top) != 1:
        fail(f"the sdist has {len(top)} top-level directories: {sorted(top)}")
    files = {str(PurePosixPath(*PurePosixPath(m.name).parts[1:])) for m in members}
    tracked = tracked_files()
    needed = {name for name in tracked if name.startswith(("rust/", "python/"))} | set(BUILD_FILES)
    missing = sorted(needed - files)
    untracked = sorted(files - tracked - {"PKG-INFO"})
    unwanted = sorted(
        name for name in files if name.startswith(tuple(d + "/" for d in LEFT_OUT_DIRECTORIES)) or FIGURES.search(name)
    )
    by_place: dict[str, int] = {}
    for name in files:
        place = name.split("/")[0] + "/" if "/" in name else name
        by_place[place] = by_place.get(place, 0) + 1
    size = sum(m.size for m in members)
    print(f"{Path(sdist).name}: {len(files)} files, {size / 1024:.0f} KiB unpacked")
    for place in sorted(by_place):
        print(f"  {place:<20} {by_place[place]:>4} file(s)")
    if missing:
        fail(f"the sdist lacks files a source build needs: {missing}")
    if untracked:
        fail(f"the sdist holds files git does not track (a stray local file?): {untracked}")
    if unwanted:
        fail(f"the sdist holds benchmark results, figures, docs, tests or scripts: {unwanted}")
    print(f"  every tracked file under rust/ and python/ and {', '.join(BUILD_FILES)} present; nothing untracked;")
    print(f"  nothing from {', '.join(d + '/' for d in LEFT_OUT_DIRECTORIES)} and no figures")


def metadata_version(text: str) -> str:
    return email.parser.Parser().parsestr(text, headersonly=True)["Version"]


def check_version(wheel: str, sdist: str) -> None:
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]["version"]
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        in_wheel = metadata_version(archive.read(name).decode())
    with tarfile.open(sdist) as archive:
        [member] = [m for m in archive.getmembers() if PurePosixPath(m.name).parts[1:] == ("PKG-INFO",)]
        extracted = archive.extractfile(member)
        assert extracted is not None
        in_sdist = metadata_version(extracted.read().decode())
    in_name = Path(wheel).name.split("-")[1]
    print(f"version: Cargo.toml {cargo}, wheel metadata {in_wheel}, wheel name {in_name}, sdist {in_sdist}")
    if not cargo == in_wheel == in_name == in_sdist:
        fail("the artifacts do not carry Cargo.toml's version")


def main(argv: list[str]) -> None:
    commands = {"glibc": (check_glibc, 2), "sdist": (check_sdist, 1), "version": (check_version, 2)}
    if not argv or argv[0] not in commands or len(argv) - 1 != commands[argv[0]][1]:
        raise SystemExit(__doc__)
    command, _count = commands[argv[0]]
    command(*argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
