"""Development tooling shared by dev.py, bench/ and tests/ (never imported by the apps)."""
