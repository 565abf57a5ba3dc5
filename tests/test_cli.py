"""The ``rtcgw`` command line, run as a real subprocess where the exit code matters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import rtcgw
from rtcgw.cli import main


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rtcgw", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version_names_the_package_version() -> None:
    result = _run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"rtcgw {rtcgw.__version__}"


def test_help_lists_check_config() -> None:
    result = _run("--help")
    assert result.returncode == 0
    assert "check-config" in result.stdout
    assert "--log-format" in result.stdout


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: rtcgw" in capsys.readouterr().err


def test_check_config_accepts_the_handbook_example(repo_root: Path) -> None:
    result = _run("check-config", str(repo_root / "examples" / "gateway.toml"))
    assert result.returncode == 0, result.stderr
    first, *rest = result.stdout.splitlines()
    assert first == "OK"
    assert rest, "a summary follows OK"


def test_check_config_accepts_the_minimal_example(repo_root: Path) -> None:
    result = _run("check-config", str(repo_root / "examples" / "minimal.toml"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK\n")


def test_check_config_lists_every_problem_with_exit_code_2(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text(
        "[gateway]\nworkers = -1\nno_such_key = 1\n",
        encoding="utf-8",
    )
    result = _run("check-config", str(bad))
    assert result.returncode == 2
    assert result.stdout == ""
    problems = [line for line in result.stderr.splitlines() if line.startswith("broken.toml")]
    assert len(problems) >= 2, result.stderr
    assert any("gateway.workers" in p for p in problems)
    assert any("gateway.no_such_key" in p for p in problems)


def test_check_config_names_a_missing_file(tmp_path: Path) -> None:
    result = _run("check-config", str(tmp_path / "absent.toml"))
    assert result.returncode == 2
    assert "absent.toml" in result.stderr


def test_check_config_survives_a_closed_pipe(repo_root: Path) -> None:
    # `rtcgw check-config FILE | head -1`: the reader closes early; no traceback.
    result = subprocess.run(
        f'"{sys.executable}" -m rtcgw check-config "{repo_root / "examples" / "gateway.toml"}"'
        " | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout == "OK\n"
    assert "Traceback" not in result.stderr
