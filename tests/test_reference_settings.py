"""The reference project's settings refuse to run in production without a secret key:
a public fallback key would let anyone forge sessions, password-reset links and signed
portal links."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.procs import ROOT

IMPORT = "import webhooks_project.settings as s; print('KEY', len(s.SECRET_KEY))"


def import_settings(**env: str) -> subprocess.CompletedProcess:
    base = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DJANGO_SETTINGS_MODULE"}
    }
    return subprocess.run(
        [sys.executable, "-c", IMPORT],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("debug", [None, "0", "false", ""])
def test_no_secret_key_without_debug_refuses_to_start(debug):
    env = {"DJANGO_DEBUG": debug} if debug is not None else {}
    result = import_settings(**env)

    assert result.returncode != 0, result.stdout
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_an_empty_secret_key_is_no_key():
    result = import_settings(DJANGO_SECRET_KEY="   ")

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_a_secret_key_from_the_environment_is_used():
    result = import_settings(DJANGO_SECRET_KEY="k" * 50)

    assert result.returncode == 0, result.stderr
    assert "KEY 50" in result.stdout


def test_debug_runs_without_a_key():
    result = import_settings(DJANGO_DEBUG="1")

    assert result.returncode == 0, result.stderr
    assert "KEY" in result.stdout


def test_manage_py_names_the_variable_to_set():
    base = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DJANGO_SETTINGS_MODULE"}
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert "Set DJANGO_SECRET_KEY" in result.stderr
