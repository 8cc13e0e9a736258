"""``spapr-irq compare A B``: where two releases (or a release and a variant) part ways, per
configuration x host x guest: the boot each gives (mode and backend, or the refusal) and the
guarantees the checker finds broken there."""

from __future__ import annotations

from dataclasses import dataclass

from ..explore import resolve
from .engine import CheckResult, check


@dataclass
class Difference:
    options: str
    host: str
    guest: str
    boot: tuple[str, str]  # the boot's outcome under A and under B
    broken: tuple[tuple[str, ...], tuple[str, ...]]  # guarantees broken under A and under B

    def as_dict(self, a: str, b: str) -> dict:
        return {"config": self.options, "host": self.host, "guest": self.guest,
                a: {"boot": self.boot[0], "broken": list(self.broken[0])},
                b: {"boot": self.boot[1], "broken": list(self.broken[1])}}


def _boot(options: str, host: str, guest: str, qemu: str) -> str:
    outcome = resolve(options, host, guest, qemu=qemu)
    if outcome.result == "error":
        return f"error at {outcome.stage}: {outcome.error.splitlines()[0]}"
    return f"{outcome.interrupt_mode.upper()} {'KVM' if outcome.backend == 'kvm' else 'emulated'}" \
        + (" (warned)" if outcome.warnings else "")


def _broken(result: CheckResult) -> dict[tuple[str, str, str], tuple[str, ...]]:
    out: dict[tuple[str, str, str], set[str]] = {}
    for finding in result.findings:
        out.setdefault((finding.options, finding.host, finding.guest), set()).add(finding.guarantee)
        if finding.other_host:
            out.setdefault((finding.options, finding.other_host, finding.guest),
                           set()).add(finding.guarantee)
    return {key: tuple(sorted(value)) for key, value in out.items()}


def compare(a: str, b: str, depth: int = 2, hosts=None, guests=None, configs=None,
            jobs: int = 1, space: str = "default", progress=None
            ) -> tuple[list[Difference], CheckResult, CheckResult]:
    """Check the same space under both releases and list every configuration x host x guest
    whose boot or broken guarantees differ."""
    from ..guest.profiles import GUESTS
    from ..host.host import PRESETS
    from .engine import space_configs, space_guests

    results = [check(qemu=q, depth=depth, hosts=hosts, guests=guests, configs=configs, jobs=jobs,
                     space=space, progress=progress) for q in (a, b)]
    broken = [_broken(r) for r in results]
    out = []
    # The same configuration in both releases: positions pair them (the legacy machine of the
    # full space is named differently in a vendor build).
    pairs = [(c, c) for c in configs] if configs else list(zip(space_configs(space, a),
                                                                space_configs(space, b)))
    for options_a, options_b in pairs:
        for host in hosts or list(PRESETS):
            for guest in guests or space_guests(space) or list(GUESTS):
                boots = (_boot(options_a, host, guest, a), _boot(options_b, host, guest, b))
                found = (broken[0].get((options_a, host, guest), ()),
                         broken[1].get((options_b, host, guest), ()))
                if boots[0] != boots[1] or found[0] != found[1]:
                    options = options_a if options_a == options_b else f"{options_a} | {options_b}"
                    out.append(Difference(options, host, guest, boots, found))
    return out, results[0], results[1]
