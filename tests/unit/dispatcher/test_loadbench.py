"""``drt bench dispatch --mode``: the dispatcher under test runs in the mode asked for."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dispatcher import loadbench
from dispatcher.chaos import settings_env
from dispatcher.cli import app
from dispatcher.config import Settings


def test_with_mode_reaches_the_child_environment() -> None:
    base = Settings()
    base.dispatch.mode = "batch"
    env = settings_env(loadbench.with_mode(base, "immediate"))
    assert env["DRT_DISPATCH__MODE"] == "immediate"
    assert base.dispatch.mode == "batch"  # a copy
    assert settings_env(loadbench.with_mode(base, "batch"))["DRT_DISPATCH__MODE"] == "batch"
    with pytest.raises(ValueError, match="not understood"):
        loadbench.with_mode(base, "fast")


def test_bench_dispatch_defaults_to_immediate(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    async def fake_run_load(settings: Settings, **kw: object) -> None:
        seen.update(kw)

    monkeypatch.setattr(loadbench, "run_load", fake_run_load)
    monkeypatch.setattr(loadbench, "print_table", lambda result: None)
    monkeypatch.setenv("DRT_DISPATCH__MODE", "batch")
    runner = CliRunner()
    assert runner.invoke(app, ["bench", "dispatch", "--seconds", "1"]).exit_code == 0
    assert seen["mode"] == "immediate"
    assert runner.invoke(app, ["bench", "dispatch", "--mode", "batch"]).exit_code == 0
    assert seen["mode"] == "batch"
    assert runner.invoke(app, ["bench", "dispatch", "--mode", "fast"]).exit_code != 0
