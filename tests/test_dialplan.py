"""The shipped dialplan and the code agree: every FastAGI script the dialplan
calls is a registered flow, every flow is reachable, and the channel variables
the dialplan reads are exactly the ones the code sets."""

import re
from pathlib import Path

from ivr import channel_vars
from ivr.flows import build_registry

DIALPLAN = Path(__file__).resolve().parents[1] / "dialplans" / "extensions.conf"
CODE = Path(__file__).resolve().parents[1] / "ivr"


def _dialplan_lines() -> list[str]:
    return [line.split(";", 1)[0] for line in DIALPLAN.read_text(encoding="utf-8").splitlines()]


def test_every_agi_script_is_a_registered_flow_and_back():
    scripts = set()
    for line in _dialplan_lines():
        scripts.update(re.findall(r"AGI\(agi://\$\{IVR_AGI\}/([a-z_]+)", line))
    assert scripts == set(build_registry())


def test_channel_variables_agree_both_ways():
    read_by_dialplan = set()
    for line in _dialplan_lines():
        read_by_dialplan.update(re.findall(r"\$\{(IVR_[A-Z_]+)\}", line))
    read_by_dialplan -= {"IVR_AGI", "IVR_SOUNDS"}  # globals the dialplan defines itself
    declared = {value for name, value in vars(channel_vars).items() if name.isupper() and value.startswith("IVR_")}
    assert read_by_dialplan == declared
    code = "\n".join(p.read_text(encoding="utf-8") for p in CODE.rglob("*.py"))
    for value in declared:
        constant = next(n for n, v in vars(channel_vars).items() if v == value and n.isupper())
        assert f"channel_vars.{constant}" in code or f"import {constant}" in code or f" {constant}," in code


def test_result_values_the_dialplan_tests_are_the_ones_the_code_sets():
    compared = set()
    for line in _dialplan_lines():
        compared.update(re.findall(r'"\$\{IVR_RESULT\}" = "([A-Z]+)"', line))
    assert compared <= {channel_vars.RESULT_OK, channel_vars.RESULT_FAILED, channel_vars.RESULT_NOROUTE}
