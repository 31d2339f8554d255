"""The docs stay in sync with the code: every setting documented with its real default, the
Python examples parse, and the links between pages resolve."""

from __future__ import annotations

import ast
import re
import textwrap

import pytest

from deliveries.conf import DEFAULTS as PIPELINE_DEFAULTS
from tests.procs import ROOT
from webhooks_core.conf import DEFAULTS as REGISTRY_DEFAULTS
from webhooks_portal.conf import DEFAULTS as PORTAL_DEFAULTS

DOCS = ROOT / "docs"
# Pages written under other issues (API, operations, performance): linked from here, checked
# once they exist.
WRITTEN_ELSEWHERE = {"api.md", "operations.md", "performance.md"}
# The one WEBHOOKS dict: the registry's keys, the pipeline's and the portal's.
DEFAULTS = {**REGISTRY_DEFAULTS, **PIPELINE_DEFAULTS, **PORTAL_DEFAULTS}


def settings_sections() -> dict[str, str]:
    text = (DOCS / "settings.md").read_text()
    parts = re.split(r"^### `([A-Z_]+)`\s*$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_every_webhooks_key_is_documented_with_its_default(key):
    sections = settings_sections()

    assert key in sections, f"docs/settings.md has no '### `{key}`' section"
    assert f"Default: `{DEFAULTS[key]!r}`" in sections[key], (
        f"docs/settings.md gives another default for {key} than the apps' conf.py "
        f"({DEFAULTS[key]!r})"
    )
    # Below the default line there is an explanation, not just the value.
    assert len(sections[key].split()) > 12


def test_no_documented_key_is_unknown_to_the_code():
    assert set(settings_sections()) - set(DEFAULTS) == set()


def python_blocks():
    for page in sorted(DOCS.glob("*.md")):
        # Blocks may be indented inside list items.
        pattern = re.compile(r"^( *)```python\n(.*?)^\1```", re.DOTALL | re.MULTILINE)
        for number, match in enumerate(pattern.finditer(page.read_text())):
            yield pytest.param(textwrap.dedent(match.group(2)), id=f"{page.name}-{number}")


@pytest.mark.parametrize("code", list(python_blocks()))
def test_python_examples_parse(code):
    ast.parse(code)


def test_links_between_pages_resolve():
    missing = []
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text()):
            if not (DOCS / target).exists() and target not in WRITTEN_ELSEWHERE:
                missing.append(f"{page.name} -> {target}")

    assert missing == []


def test_index_links_every_page():
    index = (DOCS / "index.md").read_text()
    pages = {page.name for page in DOCS.glob("*.md")} - {"index.md"}

    assert {page for page in pages | WRITTEN_ELSEWHERE if f"]({page})" not in index} == set()


def test_embedding_guide_lists_every_system_check():
    source = (ROOT / "deliveries" / "checks.py").read_text() + (
        ROOT / "subscriptions" / "checks.py"
    ).read_text()
    ids = set(re.findall(r'id="(webhooks\.[EW]\d{3})"', source))
    guide = (DOCS / "embedding.md").read_text()

    assert ids and {check_id for check_id in ids if f"`{check_id}`" not in guide} == set()


@pytest.mark.django_db
def test_api_page_shows_every_path_of_the_schema(client):
    """api.md is written by hand; the schema is the reference. Every path the schema serves
    appears in api.md (as `/api/...` or `$API/...`, any value in place of a `{parameter}`)."""
    import json

    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    text = (DOCS / "api.md").read_text()

    def shown(path: str) -> bool:
        tail = path.removeprefix("/api")
        pattern = r"[^/\s\"`]+".join(re.escape(part) for part in re.split(r"\{[^}]+\}", tail))
        return re.search(r"(/api|\$API)" + pattern + r"(?=[\s\"`?]|$)", text) is not None

    assert len(paths) > 10
    assert [path for path in paths if not shown(path)] == []
