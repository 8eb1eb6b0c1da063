"""Menus as data: the shipped file validates, and mistakes are reported clearly."""

from pathlib import Path

import pytest

from ivr.app import load_catalog
from ivr.flows.actions import build_actions
from ivr.menus import DEFAULT_MENUS_FILE, MenuError, load_menus


def _load(path: Path):
    return load_menus(path, build_actions(), load_catalog().ids)


def test_shipped_menus_validate():
    menus = _load(DEFAULT_MENUS_FILE)
    assert menus["main"].options == {"1": "agenda", "2": "submit", "3": "track", "9": "emergency", "0": "operator"}
    assert menus["main"].repeat_key == "*"
    assert menus["after_hours"].options == {"1": "emergency", "2": "message"}


def test_every_problem_is_reported_at_once(tmp_path: Path):
    bad = tmp_path / "menus.toml"
    bad.write_text(
        """
[menus.main]
prompt = "menu.nope"
timeout = 500
on_failure = "explode"
repeat_key = "1"
[menus.main.options]
"1" = "agenda"
"12" = "operator"
"5" = "dance"
""",
        encoding="utf-8",
    )
    with pytest.raises(MenuError) as error:
        _load(bad)
    message = str(error.value)
    for expected in (
        "unknown prompt 'menu.nope'",
        "'12' is not a single keypad key",
        "unknown action 'dance'",
        "on_failure: unknown action 'explode'",
        "repeat_key: '1' clashes",
        "timeout must be 1-60 s",
    ):
        assert expected in message


def test_unreadable_file_is_a_menu_error(tmp_path: Path):
    broken = tmp_path / "menus.toml"
    broken.write_text("[menus.main\n", encoding="utf-8")
    with pytest.raises(MenuError):
        _load(broken)
