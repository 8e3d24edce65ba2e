"""The README documents every setting and names the two set-up commands."""

from __future__ import annotations

from pathlib import Path

from dispatcher.config import environment_variables

README = Path(__file__).parents[3] / "README.md"


def test_every_setting_is_documented():
    """Each DRT_ environment variable appears in the README's settings table."""
    text = README.read_text()
    missing = [name for name, _, _ in environment_variables() if f"`{name}`" not in text]
    assert not missing, f"document these in README.md: {missing}"


def test_two_setup_commands_exist():
    """The README's two set-up commands name scripts that exist."""
    text = README.read_text()
    for script in ("deploy/run.sh", "deploy/test.sh"):
        assert f"bash {script}" in text
        assert (README.parent / script).is_file(), script
