"""The layout the design states, checked on the imports of every module (with `ast`):
the shared core imports no app, the registry never imports the pipeline, neither imports the
portal, and nothing imports the tasks module, which Celery
alone loads (the services send tasks by name through `deliveries.dispatch`), so the services
and the tasks cannot import each other."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from tests.procs import ROOT


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules `path` imports (relative imports resolved)."""
    module_parts = path.relative_to(ROOT).with_suffix("").parts
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module_parts[: len(module_parts) - node.level]
                if path.name == "__init__.py":
                    base = module_parts[: len(module_parts) - node.level + 1]
                prefix = ".".join((*base, node.module or ""))
            else:
                prefix = node.module or ""
            prefix = prefix.strip(".")
            names.add(prefix)
            names.update(f"{prefix}.{alias.name}" for alias in node.names)
    return names


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_the_registry_never_imports_the_pipeline():
    offenders = {
        str(path.relative_to(ROOT)): name
        for path in modules("subscriptions")
        for name in imported_modules(path)
        if name.split(".")[0] == "deliveries"
    }
    assert offenders == {}


def test_the_shared_core_imports_none_of_the_apps():
    """webhooks_core is the layer under the registry, the pipeline and the portal: settings,
    access, tenancy, throttling, the SSRF guard, text and wire rules. It imports none of them
    (docs/architecture.md)."""
    offenders = {
        str(path.relative_to(ROOT)): name
        for path in modules("webhooks_core")
        for name in imported_modules(path)
        if name.split(".")[0]
        in ("subscriptions", "deliveries", "webhooks_portal", "webhooks_project")
    }
    assert offenders == {}


def test_neither_app_imports_the_portal():
    offenders = {
        str(path.relative_to(ROOT)): name
        for package in ("webhooks_core", "subscriptions", "deliveries")
        for path in modules(package)
        for name in imported_modules(path)
        if name.split(".")[0] == "webhooks_portal"
    }
    assert offenders == {}


def test_nothing_imports_the_tasks_module():
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("deliveries", "subscriptions", "webhooks_receiver")
        for path in modules(package)
        if path != ROOT / "deliveries" / "tasks.py" and "deliveries.tasks" in imported_modules(path)
    ]
    assert offenders == []


def test_the_tasks_are_the_names_dispatch_sends():
    from deliveries import dispatch, tasks

    names = {
        task.name
        for task in vars(tasks).values()
        if getattr(task, "name", "").startswith("deliveries.tasks.")
    }
    sent = {v for k, v in vars(dispatch).items() if k.isupper() and isinstance(v, str)}
    assert names == sent


def test_the_checker_resolves_relative_imports(monkeypatch):
    # services/x.py doing `from ..tasks import deliver` imports deliveries.tasks.
    path = ROOT / "deliveries" / "services" / "publishing.py"
    source = "from ..tasks import deliver\nfrom . import states\n"
    monkeypatch.setattr(Path, "read_text", lambda self: source)
    assert {"deliveries.tasks", "deliveries.services.states"} <= imported_modules(path)


# Run in a fresh interpreter: Django's setup imports every app's admin module (autodiscover),
# then each of our admin modules is imported too. Any unregister() on any admin site fails.
NO_UNREGISTER = """
import importlib, pkgutil, sys
from django.contrib.admin.sites import AdminSite

calls = []
AdminSite.unregister = lambda self, model_or_iterable: calls.append(repr(model_or_iterable))
import django
django.setup()
for app in ("subscriptions", "deliveries", "webhooks_portal"):
    try:
        package = importlib.import_module(app + ".admin")
    except ModuleNotFoundError:
        continue
    for info in pkgutil.walk_packages(getattr(package, "__path__", []), package.__name__ + "."):
        importlib.import_module(info.name)
print(calls)
"""


def test_importing_the_admin_modules_never_unregisters_an_admin():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", NO_UNREGISTER],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_apps_never_import_the_tooling():
    """devtools (the process helpers of dev.py, bench and the tests) and the tests stay out of
    the shipped packages."""
    offenders = {
        str(path.relative_to(ROOT)): name
        for package in (
            "webhooks_core",
            "subscriptions",
            "deliveries",
            "webhooks_portal",
            "webhooks_receiver",
        )
        for path in modules(package)
        for name in imported_modules(path)
        if name.split(".")[0] in ("devtools", "tests", "bench")
    }
    assert offenders == {}
