"""The record of published event schemas (`WEBHOOKS["CONTRACTS_FILE"]`) and its comparison
with the code's declarations, for `manage.py webhooks_contracts`.

The file is JSON: `{"order.created": {"1": {schema}, "2": {schema}}}`, keys sorted and
indented so that a change shows as a readable diff in review.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .contract_diff import breaking_changes
from .contracts import ContractRegistry, contracts

Contracts = dict[str, dict[str, Any]]


@dataclass
class Report:
    """`breaking`: sentences naming each breaking change to a recorded version; `compatible`:
    each other difference (new types, new versions, compatible edits); `count`: versions
    declared now."""

    breaking: list[str] = field(default_factory=list)
    compatible: list[str] = field(default_factory=list)
    count: int = 0


def current_contracts(registry: ContractRegistry = contracts) -> Contracts:
    """Every declared type's versions and their schemas, as the file records them."""
    return {
        name: {str(entry.version): entry.schema for entry in registry.versions(name)}
        for name in registry.names()
    }


def read_contracts(path: str | os.PathLike[str]) -> Contracts | None:
    """The recorded contracts at `path`, or None if there is no file. Raises ValueError for a
    file that is not such a JSON object."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    value = json.loads(text)
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise ValueError(f"{path} is not a record of event contracts.")
    return value


def write_contracts(path: str | os.PathLike[str], current: Contracts) -> None:
    """Write `current` to `path` (replaced whole: a reader never sees half a file)."""
    target = Path(path)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(
        json.dumps(current, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    os.replace(temporary, target)


def compare(recorded: Contracts, current: Contracts) -> Report:
    """What changed from `recorded` to `current` (see `contract_diff` for what breaks)."""
    report = Report(count=sum(len(versions) for versions in current.values()))
    for name, versions in sorted(recorded.items()):
        for version, old in sorted(versions.items(), key=lambda item: int(item[0])):
            new = current.get(name, {}).get(version)
            if new is None:
                report.breaking.append(f"{name} v{version}: no longer declared")
                continue
            changes = breaking_changes(old, new)
            report.breaking += [f"{name} v{version}: {change}" for change in changes]
            if not changes and old != new:
                report.compatible.append(f"{name} v{version}: schema changed compatibly")
    for name, versions in sorted(current.items()):
        for version in sorted(versions, key=int):
            if version not in recorded.get(name, {}):
                report.compatible.append(f"{name} v{version}: new")
    return report
