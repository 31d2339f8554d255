"""docs/embedding.md says how many top-level packages the wheel installs, and names them: both
must match what pyproject.toml's package list makes setuptools ship (issue 28: it said three
while the wheel installed four). Computed from pyproject.toml, never hard-coded, so it stays
true when a package is added or renamed. `tests/test_embedding.py` builds the real wheel."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import setuptools

ROOT = Path(__file__).resolve().parent.parent
NUMBERS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}


def shipped_top_level_packages() -> set[str]:
    """The top-level import names of the wheel, as setuptools finds them from pyproject.toml."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    find = config["tool"]["setuptools"]["packages"]["find"]
    packages = setuptools.find_packages(
        str(ROOT), include=find.get("include", ("*",)), exclude=find.get("exclude", ())
    )
    return {name.split(".")[0] for name in packages}


def test_embedding_md_counts_and_names_the_wheels_top_level_packages():
    shipped = shipped_top_level_packages()
    assert shipped, "pyproject.toml ships no package"
    text = (ROOT / "docs" / "embedding.md").read_text()
    found = re.search(r"This installs (\w+) top-level Python packages: (.*?)\n\n", text, re.S)
    assert found, "docs/embedding.md no longer says how many top-level packages it installs"
    word, paragraph = found.group(1).lower(), found.group(2)
    assert NUMBERS.get(word, word) == len(shipped), (word, sorted(shipped))
    named = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", paragraph))
    assert shipped <= named, f"not named: {sorted(shipped - named)}"
