"""The CLI's handling of the garbage collector around a start (app/cli.py `main`)."""

from __future__ import annotations

import gc

import pytest

from app import cli


class TestCollector:
    def test_importing_the_cli_leaves_the_collector_alone(self) -> None:
        assert gc.isenabled()

    def test_on_again_after_the_command_whatever_happened(self) -> None:
        """Paused while the command starts; on again after it, even when it ends by SystemExit
        (here: --help)."""
        with pytest.raises(SystemExit) as exited:
            cli.main(["--help"])
        assert exited.value.code == 0
        assert gc.isenabled()

    def test_left_off_when_the_caller_had_it_off(self) -> None:
        gc.disable()
        try:
            with pytest.raises(SystemExit):
                cli.main(["--help"])
            assert not gc.isenabled()
        finally:
            gc.enable()
