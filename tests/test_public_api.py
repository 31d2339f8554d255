"""The apps use only the public API of kombu, celery, urllib3 and requests.

The apps are installed into other people's projects and upgraded on their schedule; a private
name of one of these libraries (a `_`-prefixed module, function, attribute or method) can change
in any release. Every module of the apps is read with `ast` for imports of private names and for
private attributes reached from a name bound to one of these libraries, and every class is
inspected at runtime for methods that override, or reach, a private method of a library class
in its MRO (a subclass of kombu's channel calling `_create_client`, a mixin overriding urllib3's
`_make_request`). The checker is itself tested on examples of each pattern.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.procs import ROOT

LIBRARIES = ("kombu", "celery", "urllib3", "requests")
# The apps, and any package built on them (the portal); those not present are skipped.
PACKAGES = ("webhooks_core", "subscriptions", "deliveries", "webhooks_receiver", "webhooks_portal")


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def is_library(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] in LIBRARIES


def app_modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


class PrivateUse(ast.NodeVisitor):
    """Private names of the libraries reached by imports or attribute access, in one module.

    `self_access` collects `(class name, attribute)` for every `self._x` / `super()._x` inside
    a class body, for the runtime check against the class's MRO.
    """

    def __init__(self) -> None:
        self.bound: set[str] = set()  # local names bound to a library module or object
        self.problems: list[str] = []
        self.self_access: list[tuple[str, str, int]] = []
        self.classes: list[str] = []

    def scan(self, source: str) -> PrivateUse:
        tree = ast.parse(source)
        # Bindings first, so that a function-level import binds its names for the whole module.
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                self._bind(node)
        self.visit(tree)
        return self

    def _bind(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if is_library(alias.name):
                    self.bound.add(alias.asname or alias.name.split(".")[0])
        elif node.level == 0 and is_library(node.module):
            self.bound.update(alias.asname or alias.name for alias in node.names)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if is_library(alias.name) and any(map(is_private, alias.name.split("."))):
                self.problems.append(f"line {node.lineno}: import {alias.name}")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not is_library(node.module):
            return
        if any(map(is_private, node.module.split("."))):
            self.problems.append(f"line {node.lineno}: from {node.module} import ...")
        for alias in node.names:
            if is_private(alias.name):
                self.problems.append(f"line {node.lineno}: from {node.module} import {alias.name}")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if is_private(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute | ast.Call | ast.Subscript):
                root = root.func if isinstance(root, ast.Call) else root.value
            if isinstance(root, ast.Name) and root.id in self.bound:
                self.problems.append(f"line {node.lineno}: {ast.unparse(node)}")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        # getattr(library_thing, "_private"), and its hasattr/setattr siblings.
        if (
            isinstance(node.func, ast.Name)
            and node.func.id in {"getattr", "hasattr", "setattr"}
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and is_private(node.args[1].value)
        ):
            root = node.args[0]
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in self.bound:
                self.problems.append(f"line {node.lineno}: {ast.unparse(node)}")
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.classes.append(node.name)
        for inner in ast.walk(node):
            if not (isinstance(inner, ast.Attribute) and is_private(inner.attr)):
                continue
            value = inner.value
            is_self = isinstance(value, ast.Name) and value.id in {"self", "cls"}
            is_super = (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Name)
                and value.func.id == "super"
            )
            if is_self or is_super:
                self.self_access.append((node.name, inner.attr, inner.lineno))
        self.generic_visit(node)


def library_members(cls: type) -> dict[str, type]:
    """Private names defined by the library classes in `cls`'s MRO, with the defining class."""
    found: dict[str, type] = {}
    for klass in reversed(cls.__mro__):
        if is_library(klass.__module__):
            found.update({name: klass for name in vars(klass) if is_private(name)})
    return found


def private_overrides(cls: type, is_ours: Callable[[type], bool]) -> list[str]:
    """Private methods of a library class that a class of ours in `cls`'s MRO redefines."""
    members = library_members(cls)
    return [
        f"{klass.__qualname__}.{name} overrides {members[name].__module__}."
        f"{members[name].__qualname__}.{name}"
        for klass in cls.__mro__
        if is_ours(klass)
        for name in vars(klass)
        if name in members
    ]


def module_problems(module_name: str, source: str) -> list[str]:
    found = PrivateUse().scan(source)
    problems = list(found.problems)
    module = importlib.import_module(module_name)
    for name in found.classes:
        cls = getattr(module, name, None)
        if not inspect.isclass(cls):
            continue  # a class defined inside a function
        problems += private_overrides(cls, lambda k: k.__module__.split(".")[0] in PACKAGES)
        members = library_members(cls)
        problems += [
            f"line {line}: {name} reaches {members[attr].__qualname__}.{attr}"
            for owner, attr, line in found.self_access
            if owner == name and attr in members
        ]
    return problems


@pytest.mark.parametrize(("module_name", "path"), list(app_modules()), ids=lambda v: str(v))
def test_no_private_name_of_kombu_celery_urllib3_or_requests(module_name, path):
    assert module_problems(module_name, path.read_text()) == []


def test_every_app_module_is_checked():
    checked = {name for name, _ in app_modules()}

    assert {"deliveries.dispatch", "deliveries.checks", "deliveries.transport"} <= checked
    assert {"webhooks_core.conf", "webhooks_receiver.django"} <= checked


# --- The checker, on examples of what it must catch ---------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "from celery import _state",
        "from celery._state import get_current_app",
        "import celery._state",
        "import celery\napp = celery._state.default_app",
        "from celery import current_app\ncurrent_app.amqp._producer_pool",
        "import kombu.transport.redis as r\nr.Channel._create_client",
        "from urllib3 import connectionpool\nconnectionpool.HTTPConnectionPool._make_request",
        "from requests import adapters\ngetattr(adapters.HTTPAdapter, '_pool')",
        "def f():\n    from celery import current_app\n    return current_app._tasks",
    ],
)
def test_the_checker_catches_private_imports_and_attributes(source):
    assert PrivateUse().scan(source).problems


@pytest.mark.parametrize(
    "source",
    [
        "from celery import current_app\ncurrent_app.send_task('x')",
        "import requests\nrequests.Session().__class__.__name__",
        "class Mine:\n    _cache = {}\n    def _own(self):\n        return self._cache",
        "from django.db import models\nobj = models.Model()\nobj._state.adding",
    ],
)
def test_the_checker_leaves_public_use_and_own_private_names_alone(source):
    assert PrivateUse().scan(source).problems == []


def test_the_checker_catches_private_overrides_and_calls_in_subclasses():
    from kombu.transport import redis as kombu_redis
    from urllib3.connectionpool import HTTPConnectionPool

    class Channel(kombu_redis.Channel):
        def conn_or_acquire(self, client=None):
            return self._create_client()  # reaches a private method, overrides nothing

    class TrackingMixin:
        def _make_request(self, conn, *args, **kwargs):
            return super()._make_request(conn, *args, **kwargs)

    class Pool(TrackingMixin, HTTPConnectionPool):
        pass

    def ours(klass: type) -> bool:
        return klass.__module__ == __name__

    assert private_overrides(Pool, ours) == [
        "test_the_checker_catches_private_overrides_and_calls_in_subclasses.<locals>."
        "TrackingMixin._make_request overrides urllib3.connectionpool."
        "HTTPConnectionPool._make_request"
    ]
    assert "_create_client" in library_members(Channel)
    source = inspect.getsource(test_the_checker_catches_private_overrides_and_calls_in_subclasses)
    accesses = PrivateUse().scan(inspect.cleandoc("\n" + source)).self_access
    assert ("Channel", "_create_client") in {(owner, attr) for owner, attr, _ in accesses}
    assert ("TrackingMixin", "_make_request") in {(owner, attr) for owner, attr, _ in accesses}
