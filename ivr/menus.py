"""Menus as data: loading, validating and running a keypad menu.

A menu is a prompt, a key-to-action table and its retry policy. Running one
returns the chosen action's name; the flow decides what the action does.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.call import ALL_KEYS, Call

DEFAULT_MENUS_FILE = Path(__file__).parent / "flows" / "menus.toml"
REPEAT = "repeat"


class MenuError(ValueError):
    """The menu file is wrong; the message says where and how."""


@dataclass(frozen=True)
class Menu:
    name: str
    prompt: str
    options: dict[str, str]
    timeout: float = 6.0
    max_no_input: int = 3
    max_invalid: int = 3
    no_input_prompt: str = "menu.no_input"
    invalid_prompt: str = "menu.invalid"
    on_failure: str = "goodbye"
    repeat_key: str | None = "*"


_FIELDS = {
    "prompt",
    "options",
    "timeout",
    "max_no_input",
    "max_invalid",
    "no_input_prompt",
    "invalid_prompt",
    "on_failure",
    "repeat_key",
}


def load_menus(path: Path, actions: Iterable[str], prompt_ids: Iterable[str]) -> dict[str, Menu]:
    """Read and validate the menu file; every problem is reported at once."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise MenuError(f"{path}: {exc}") from exc
    known_actions, known_prompts = set(actions), set(prompt_ids)
    problems: list[str] = []
    menus: dict[str, Menu] = {}
    for name, raw in (data.get("menus") or {}).items():
        menu = _build(name, raw, problems)
        if menu is None:
            continue
        where = f"menus.{name}"
        for prompt in (menu.prompt, menu.no_input_prompt, menu.invalid_prompt):
            if prompt not in known_prompts:
                problems.append(f"{where}: unknown prompt {prompt!r}")
        for key, action in menu.options.items():
            if len(key) != 1 or key not in ALL_KEYS:
                problems.append(f"{where}.options: {key!r} is not a single keypad key")
            if action not in known_actions:
                problems.append(f"{where}.options.{key}: unknown action {action!r}")
        if menu.on_failure not in known_actions:
            problems.append(f"{where}.on_failure: unknown action {menu.on_failure!r}")
        if menu.repeat_key is not None and (menu.repeat_key in menu.options or menu.repeat_key not in ALL_KEYS):
            problems.append(f"{where}.repeat_key: {menu.repeat_key!r} clashes with an option or is not a key")
        menus[name] = menu
    if problems:
        raise MenuError(f"{path}:\n  " + "\n  ".join(problems))
    return menus


def _build(name: str, raw: Any, problems: list[str]) -> Menu | None:
    where = f"menus.{name}"
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a table")
        return None
    unknown = set(raw) - _FIELDS
    if unknown:
        problems.append(f"{where}: unknown fields {sorted(unknown)}")
    if "prompt" not in raw or not isinstance(raw.get("options"), dict) or not raw["options"]:
        problems.append(f"{where}: needs a prompt and at least one option")
        return None
    try:
        menu = Menu(
            name=name,
            prompt=str(raw["prompt"]),
            options={str(k): str(v) for k, v in raw["options"].items()},
            timeout=float(raw.get("timeout", 6.0)),
            max_no_input=int(raw.get("max_no_input", 3)),
            max_invalid=int(raw.get("max_invalid", 3)),
            no_input_prompt=str(raw.get("no_input_prompt", "menu.no_input")),
            invalid_prompt=str(raw.get("invalid_prompt", "menu.invalid")),
            on_failure=str(raw.get("on_failure", "goodbye")),
            repeat_key=raw.get("repeat_key", "*") or None,
        )
    except (TypeError, ValueError) as exc:
        problems.append(f"{where}: {exc}")
        return None
    if not 1 <= menu.timeout <= 60 or menu.max_no_input < 1 or menu.max_invalid < 1:
        problems.append(f"{where}: timeout must be 1-60 s and retry counts at least 1")
    return menu


async def choose(call: Call, menu: Menu) -> str:
    """Play the menu until the caller picks an option; return its action.

    No key and a wrong key are counted separately; once either count reaches
    its limit the menu's ``on_failure`` action is returned. ``repeat_key``
    replays the menu without counting as a failure.
    """
    no_input = invalid = 0
    retry_prompt: str | None = None
    while True:
        call.enter(f"menu:{menu.name}")
        prompts = [retry_prompt, menu.prompt] if retry_prompt else [menu.prompt]
        answer = await call.read_digits(*prompts, max_digits=1, timeout=menu.timeout, purpose=f"menu:{menu.name}")
        # GET DATA swallows a lone "#": no digits without a timeout means it was pressed.
        key = answer.digits or (None if answer.timed_out else "#")
        if key is not None and key == menu.repeat_key:
            retry_prompt = None
            continue
        if key is not None and key in menu.options:
            return menu.options[key]
        if key is None:
            no_input += 1
            exhausted, retry_prompt = no_input >= menu.max_no_input, menu.no_input_prompt
        else:
            invalid += 1
            exhausted, retry_prompt = invalid >= menu.max_invalid, menu.invalid_prompt
        call.record.add("menu", menu=menu.name, no_input=no_input, invalid=invalid)
        if exhausted:
            return menu.on_failure
