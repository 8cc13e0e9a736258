"""`spapr-irq advise`: the settings for a fleet of hosts, ranked, with the reasons; the fleets
the users' reports came from."""

from __future__ import annotations

import json

from spapr_irq.advise import advise
from spapr_irq.cli import main

FLEET = ["power9-linux-5.10", "power9-nested-linux-5.10", "power10-linux-6.6"]
COMPAT = ["-M", "max-cpu-compat=power9"]


def by_name(settings):
    return {s.name: s for s in settings}


def test_a_mixed_fleet_is_advised_xics_in_kernel_everywhere():
    settings = advise(COMPAT, FLEET, ["linux-xive"])
    assert settings[0].name == "ic-mode=xics"
    assert settings[0].reasons[0] == "in-kernel on every host"
    assert {a.cell for a in settings[0].answers} == {"XICS KVM"}


def test_katas_kernel_irqchip_on_is_refused_on_the_nested_host():
    """Kata dropped kernel_irqchip=on because nested POWER hosts refused it: dual,on stops at CAS
    there (the XIVE guest's switch) and xive,on at init."""
    named = by_name(advise(COMPAT, FLEET, ["linux-xive"]))
    dual_on = named["ic-mode=dual,kernel-irqchip=on"]
    assert [a.cell for a in dual_on.answers if a.host == "power9-nested-linux-5.10"] == \
        ["error at CAS"]
    assert "refused on power9-nested-linux-5.10: kernel_irqchip requested but unavailable: " \
        "IRQ_XIVE capability must be present for KVM" in dual_on.reasons


def test_the_default_dual_does_not_negotiate_down_to_xics_on_a_nested_host():
    """Kata's change log says ic-mode=dual "then negotiates down to XICS"; a XIVE guest gets the
    emulated XIVE instead, with the warning coreos-assembler saw."""
    dual = by_name(advise(COMPAT, FLEET, ["linux-xive"]))["ic-mode=dual"]
    nested = next(a for a in dual.answers if a.host == "power9-nested-linux-5.10")
    assert (nested.cell, nested.warned) == ("XIVE emul.", True)


def test_hosts_giving_the_guest_another_cpu_block_the_move_and_say_what_to_add():
    dual = by_name(advise([], ["power9-linux-5.10", "power10-linux-6.6"], ["linux-xive"]))[
        "ic-mode=dual"]
    assert dual.blocked and all("max-cpu-compat" in why for *_pair, why in dual.blocked)


def test_advise_json_and_markdown(capsys):
    assert main(["advise", *COMPAT, *sum((["--host", h] for h in FLEET), []), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["recommended"] == "ic-mode=xics" and len(data["settings"]) == 9
    assert {"setting", "hosts", "not_migratable", "pending_not_exactly_once", "reasons"} <= \
        set(data["settings"][0])
    assert main(["advise", *COMPAT, *sum((["--host", h] for h in FLEET), []), "--format",
                 "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| rank | setting | power9-linux-5.10 | power9-nested-linux-5.10 | "
                          "power10-linux-6.6 | migratable | why |")
    assert "recommended: ic-mode=xics" in out


def test_advise_needs_the_fleet(capsys):
    assert main(["advise", "-M", "pseries"]) == 2
    assert "advise needs the fleet" in capsys.readouterr().err


def test_the_issues_fleet_bare_metal_nested_and_a_powervm_lpar():
    """A POWER9 bare-metal host, a nested POWER9 and a POWER10 LPAR running KVM on PowerVM (its
    KVM has the software XICS and no XIVE device): only XICS is in-kernel everywhere; the default
    dual runs the XIVE guest emulated on both nested hosts, with the fallback warning."""
    fleet = ["power9-linux-5.10", "power9-nested-linux-5.10", "power10-powervm-linux-6.8"]
    settings = advise(COMPAT, fleet, ["linux-xive"])
    assert settings[0].name == "ic-mode=xics" and not settings[0].blocked
    dual = by_name(settings)["ic-mode=dual"]
    assert [a.cell for a in dual.answers] == ["XIVE KVM", "XIVE emul.", "XIVE emul."]
    assert dual.reasons[0] == ("emulated on power10-powervm-linux-6.8, "
                               "power9-nested-linux-5.10")
