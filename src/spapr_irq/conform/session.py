"""One conformance session: which QEMU and which release it is, the cases run N at a time, the
model asked the same, and a table of agreements and differences."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..host.kvm import host_capability
from ..host.uapi import KVM_CAP_IRQ_XICS, KVM_CAP_PPC_IRQ_XIVE

KVM_CHECK_EXTENSION = 0xAE03  # _IO(KVMIO, 0x03)
from ..releases import RELEASES
from .cases import Case
from .compare import differences, observe_model, observe_run
from .qemu import Run, run_case


@dataclass
class Result:
    case: Case
    run: Run
    diffs: list[str]

    @property
    def booted(self) -> int:
        return len(self.run.console)


def qemu_release(binary: str) -> tuple[str, str]:
    """(full version, modeled release) of a QEMU binary, from ``--version``; a release this model
    does not reproduce is bad input."""
    try:
        text = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=20,
                              check=False).stdout
    except OSError as exc:
        raise InputError(f"{binary}: cannot run it: {exc.strerror}") from None
    match = re.search(r"version (\d+)\.(\d+)\.(\d+)", text)
    if not match:
        raise InputError(f"{binary}: not a QEMU binary (no version in its --version)")
    release = f"{match.group(1)}.{match.group(2)}"
    if re.search(r"qemu-kvm-[^)]*el8", text):  # RHEL 8's build: its own machine types
        release += "-rhel8"
    if release not in RELEASES:
        raise InputError(f"{binary} is QEMU {match.group(0)[8:]}: this model reproduces QEMU "
                         f"{', '.join(v for v, r in RELEASES.items() if r.base is None)}")
    return match.group(0)[8:], release


def host_for(accel: str) -> str:
    """The model host to compare against: "tcg" under TCG; under KVM the host this machine is,
    from what its kernel says (the CPU in /proc/cpuinfo, ``uname -r``, and whether the kernel
    itself runs in a pseries partition, i.e. nested), which only a POWER host can give."""
    if accel == "tcg":
        return "tcg"
    import platform

    from ..host.host import parse_host

    if platform.machine() not in ("ppc64le", "ppc64"):
        raise InputError("--accel kvm needs a POWER host running KVM; this machine is "
                         f"{platform.machine()}")
    cpu = next((line.split(":", 1)[1].split()[0].rstrip(",").lower()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("cpu")), "")
    major, minor = platform.release().split("-")[0].split(".")[:2]
    compatible = Path("/proc/device-tree/compatible")
    nested = compatible.exists() and b"pseries" in compatible.read_bytes()
    name = f"kvm:cpu={cpu},kernel={major}.{minor}{',nested=yes' if nested else ''}"
    host = parse_host(name)  # a host the model cannot describe is bad input, not a crash later
    real = kvm_capabilities()
    for cap, label in ((KVM_CAP_IRQ_XICS, "KVM_CAP_IRQ_XICS"),
                       (KVM_CAP_PPC_IRQ_XIVE, "KVM_CAP_PPC_IRQ_XIVE")):
        model = bool(host_capability(host, cap))
        if real.get(cap) is not None and bool(real[cap]) != model:
            raise InputError(f"this kernel answers {label}={int(real[cap])} but the model of "
                             f"{name} answers {int(model)}: the model cannot stand for this host")
    return name


def kvm_capabilities(device: str = "/dev/kvm") -> dict[int, int | None]:
    """KVM_CHECK_EXTENSION on the system fd for the two interrupt capabilities; None when the
    kernel cannot be asked (no /dev/kvm). On PowerPC KVM answers these on the system fd too."""
    import fcntl

    answers: dict[int, int | None] = {}
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return {KVM_CAP_IRQ_XICS: None, KVM_CAP_PPC_IRQ_XIVE: None}
    try:
        for cap in (KVM_CAP_IRQ_XICS, KVM_CAP_PPC_IRQ_XIVE):
            try:
                answers[cap] = fcntl.ioctl(fd, KVM_CHECK_EXTENSION, cap)
            except OSError:
                answers[cap] = None
    finally:
        os.close(fd)
    return answers


async def run_cases(binary: str, release: str, cases: list[Case], kernel: Path | None,
                    initrd: Path | None, jobs: int = 1, accel: str = "tcg",
                    on_start=None, on_done=None) -> list[Result]:
    """Run every case, `jobs` at a time; results in the order of `cases`."""
    host = host_for(accel)
    limit = asyncio.Semaphore(max(1, jobs))

    async def one(case: Case) -> Result:
        async with limit:
            if on_start:
                on_start(case)
            try:
                run = await run_case(binary, case, kernel, initrd, accel)
                diffs = differences(observe_run(run), observe_model(case, release, host, accel))
            except (RuntimeError, TimeoutError) as exc:
                run, diffs = Run(case.name), [f"the real run failed: {exc}"]
            result = Result(case, run, diffs)
            if on_done:
                on_done(result)
            return result

    return list(await asyncio.gather(*(one(case) for case in cases)))


def summary(results: list[Result], seconds: float) -> str:
    agree = sum(1 for r in results if not r.diffs)
    boots = sum(r.booted for r in results)
    return (f"{len(results)} cases, {agree} agree, {len(results) - agree} differ; "
            f"{boots} guest boots; {seconds:.1f} s")

