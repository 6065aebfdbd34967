"""
The README tells the truth: its two set-up commands are the ones CI runs, and every Python
block in it runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
README = (PROJECT / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)


def setup_commands() -> list[str]:
    """
    The first two shell blocks of the README.
    """
    return [code.strip() for lang, code in BLOCKS if lang == "sh"][:2]


def test_readme_starts_with_two_setup_commands() -> None:
    """
    The first code blocks are the two set-up commands: install-and-run, then install-and-test.
    """
    first_blocks = [lang for lang, _ in BLOCKS[:2]]
    assert first_blocks == ["sh", "sh"]
    run, test = setup_commands()
    assert "\n" not in run and "\n" not in test
    assert run.endswith("twistd -n sessions")
    assert "pytest" in test


def test_ci_runs_the_readme_commands() -> None:
    """
    .ci/run runs the README's test command verbatim, and the README's run command through
    .ci/readme-server, which reads it from the README itself.
    """
    ci = (PROJECT / ".ci" / "run").read_text()
    _, test = setup_commands()
    assert test in ci.splitlines()
    assert "bash .ci/readme-server" in ci
    assert "README.md" in (PROJECT / ".ci" / "readme-server").read_text()


@pytest.mark.parametrize(
    "code", [code for lang, code in BLOCKS if lang == "python"], ids=lambda c: c.split("\n")[0]
)
def test_python_blocks_run(code: str) -> None:
    """
    Every Python block of the README runs as written (its asserts included).
    """
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
