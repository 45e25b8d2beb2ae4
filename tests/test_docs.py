"""The README documents every command and every setting (docs that cannot drift)."""

from __future__ import annotations

from pathlib import Path

import typer
import typer.main

from degreeflow.cli import app
from degreeflow.settings import Settings

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def _commands(group, prefix: str = "") -> list[str]:  # type: ignore[no-untyped-def]
    paths = []
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if hasattr(command, "commands"):
            paths.extend(_commands(command, path + " "))
        else:
            paths.append(path)
    return paths


def test_every_command_is_in_the_readme():
    commands = _commands(typer.main.get_command(app))
    assert len(commands) >= 12
    missing = [c for c in commands if f"degreeflow {c}" not in README]
    assert missing == []


def test_every_setting_is_in_the_readme():
    for name in Settings.model_fields:
        assert f"DEGREEFLOW_{name.upper()}" in README


def test_quick_start_is_two_commands():
    quick = README.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in quick.strip().splitlines()] == ["make run", "make test"]
