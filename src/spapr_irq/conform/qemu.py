"""Driving a real QEMU for one case over QMP (the qemu.qmp client), and what it showed.

QEMU starts paused (-S) with a QMP socket. The runner reads ``ic-mode`` and ``info pic``, lets the
guest run until its report is on the console, reads ``info pic`` again (until two readings agree
once normalised: a running guest changes what is pending from one instant to the next), and
optionally resets for a second boot; then ``quit``. Only the process it started is ever stopped.
Everything it saw is a :class:`Run`, a plain record that can be saved as JSON and replayed.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..monitor import normalize_info_pic
from .cases import Case
from .guest import END

#: The four warnings every TCG run of QEMU 7.2 prints for the spectre capabilities: ignored.
HARMLESS = "warning: TCG doesn't support requested feature, cap-"
BOOT_TIMEOUT = 90.0


@dataclass
class Run:
    """What the real QEMU did for one case."""

    case: str
    status: int | None = None  # exit status if QEMU stopped by itself (a refusal), else None
    errors: list[str] = field(default_factory=list)  # stderr lines that are not warnings
    warnings: list[str] = field(default_factory=list)
    ic_mode: str | None = None
    pic_pre: str | None = None
    console: list[str] = field(default_factory=list)  # the console text after each boot
    pic_post: list[str] = field(default_factory=list)  # info pic after each boot
    transcript: list[dict] = field(default_factory=list)  # QMP commands and their returns
    #: The destination of a migration case: its exit status if it refused, its stderr lines,
    #: and `info pic` once the stream was loaded (the VM paused by -S).
    dst_status: int | None = None
    dst_errors: list[str] = field(default_factory=list)
    dst_pic: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Run":
        return cls(**data)


def command_line(binary: str, case: Case, kernel: Path | None, initrd: Path | None,
                 accel: str, console: Path, qmp: Path) -> list[str]:
    words = [binary, *case.options, "-m", "1G", "-vga", "none", "-display", "none",
             "-monitor", "none", "-serial", f"file:{console}", "-S",
             "-qmp", f"unix:{qmp},server=on,wait=off"]
    if accel == "kvm":
        words += ["-accel", "kvm"]
    if kernel is not None:
        words += ["-kernel", str(kernel), "-initrd", str(initrd),
                  "-append", " ".join(filter(None, ["console=hvc0 quiet", case.append]))]
    return words


def _stderr_lines(text: str) -> tuple[list[str], list[str]]:
    """QEMU's stderr as (errors, warnings), its program prefix removed; hint lines follow their
    error; the harmless TCG capability warnings are dropped."""
    errors, warnings = [], []
    for line in text.splitlines():
        if not line.strip() or "terminating on signal" in line:
            continue
        text = line.split(": ", 1)[1] if line.startswith("qemu-system-") and ": " in line else line
        if text.startswith(HARMLESS):
            continue
        if text.startswith("warning: "):
            warnings.append(text[len("warning: "):])
        else:
            errors.append(text)
    return errors, warnings


async def run_case(binary: str, case: Case, kernel: Path | None, initrd: Path | None,
                   accel: str = "tcg", timeout: float = BOOT_TIMEOUT) -> Run:
    """Boot `case` on the real QEMU and record what it showed."""
    from qemu.qmp import ConnectError, QMPClient

    run = Run(case.name)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="spapr-irq-conform-") as tmp:
        console, sock = Path(tmp) / "console.log", Path(tmp) / "qmp.sock"
        words = command_line(binary, case, kernel, initrd, accel, console, sock)
        proc = await _spawn(words)
        client = QMPClient(case.name)
        try:
            await _socket_or_exit(proc, sock)
            if proc.returncode is not None:  # QEMU refused the configuration
                run.status = proc.returncode
                return run
            try:
                await client.connect(str(sock))
            except ConnectError:  # the socket came up, then QEMU refused the machine and left
                await asyncio.wait_for(proc.wait(), 10)
                run.status = proc.returncode
                return run

            async def qmp(command: str, **args):
                answer = await client.execute(command, args or None)
                run.transcript.append({"execute": command, "arguments": args, "return": answer})
                return answer

            run.ic_mode = await qmp("qom-get", path="/machine", property="ic-mode")
            run.pic_pre = await qmp("human-monitor-command", **{"command-line": "info pic"})
            await qmp("cont")
            for boot in range(2 if case.reset else 1):
                if boot:
                    await qmp("system_reset")
                await _wait_for_report(console, boot + 1, proc, timeout)
                run.console.append(console.read_text(errors="replace"))
                run.pic_post.append(await _stable_pic(qmp))
            if case.migrate_to is not None:
                stream = Path(tmp) / "stream"
                await qmp("migrate", uri=f"exec:cat > {stream}")
                await _wait_migrated(qmp, timeout)
            await qmp("quit")
            await asyncio.wait_for(proc.wait(), 10)
            if case.migrate_to is not None:
                await _run_destination(binary, case, kernel, initrd, accel, Path(tmp), run, timeout)
        finally:
            if client.runstate.name != "IDLE":
                try:
                    await client.disconnect()
                except (EOFError, ConnectionError):  # QEMU closed the socket on quit
                    pass
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            stderr = (await proc.stderr.read()).decode(errors="replace")
            run.errors, run.warnings = _stderr_lines(stderr)
            run.seconds = round(time.monotonic() - start, 2)
    return run


async def _spawn(words: list[str]):
    """Start QEMU with no input, its output discarded and its stderr kept."""
    return await asyncio.create_subprocess_exec(
        *words, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)


async def _socket_or_exit(proc, sock: Path) -> None:
    """Wait until QEMU's QMP socket exists or QEMU has exited (it refused its command line)."""
    while not sock.exists() and proc.returncode is None:
        try:
            await asyncio.wait_for(proc.wait(), 0.05)
        except asyncio.TimeoutError:
            pass


async def _wait_migrated(qmp, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = (await qmp("query-migrate")).get("status")
        if status == "completed":
            return
        if status in ("failed", "cancelled"):
            raise RuntimeError(f"the source's migration {status}")
        await asyncio.sleep(0.1)
    raise TimeoutError("the migration did not complete")


async def _run_destination(binary: str, case: Case, kernel, initrd, accel: str, tmp: Path,
                           run: Run, timeout: float) -> None:
    """Start the destination paused with -incoming, let it load the stream, read `info pic`."""
    from qemu.qmp import ConnectError, QMPClient

    target = Case(case.name, case.migrate_to, case.append)
    words = command_line(binary, target, kernel, initrd, accel, tmp / "console-dst.log",
                         tmp / "qmp-dst.sock") + ["-incoming", f"exec:cat {tmp / 'stream'}"]
    proc = await _spawn(words)
    sock = tmp / "qmp-dst.sock"
    client = QMPClient(case.name + "-dst")
    try:
        await _socket_or_exit(proc, sock)
        try:
            if proc.returncode is None:
                await client.connect(str(sock))
        except ConnectError:
            pass
        deadline = time.monotonic() + timeout
        while proc.returncode is None and time.monotonic() < deadline:
            try:
                status = (await client.execute("query-status"))["status"]
            except Exception:  # the socket closed: QEMU refused the stream and is exiting
                break
            if status != "inmigrate":
                run.dst_pic = await client.execute("human-monitor-command",
                                                   {"command-line": "info pic"})
                await client.execute("quit")
                break
            await asyncio.sleep(0.1)
        await asyncio.wait_for(proc.wait(), 10)
        if run.dst_pic is None:
            run.dst_status = proc.returncode
    finally:
        if client.runstate.name != "IDLE":
            try:
                await client.disconnect()
            except (EOFError, ConnectionError):
                pass
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        run.dst_errors, _ = _stderr_lines((await proc.stderr.read()).decode(errors="replace"))


async def _wait_for_report(console: Path, count: int, proc, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if console.exists() and console.read_text(errors="replace").count(END) >= count:
            return
        if proc.returncode is not None:
            raise RuntimeError(f"QEMU exited ({proc.returncode}) before the guest reported")
        await asyncio.sleep(0.1)
    raise TimeoutError(f"no guest report within {timeout:.0f} s")


async def _stable_pic(qmp, tries: int = 8) -> str:
    """`info pic` read until two readings agree once normalised (the last reading otherwise)."""
    last = await qmp("human-monitor-command", **{"command-line": "info pic"})
    for _ in range(tries):
        await asyncio.sleep(0.05)
        text = await qmp("human-monitor-command", **{"command-line": "info pic"})
        if normalize_info_pic(text) == normalize_info_pic(last):
            return text
        last = text
    return last


def find_binary(path: str | None) -> str | None:
    """The QEMU to run: `path` if given, else qemu-system-ppc64 on PATH."""
    from shutil import which

    if path:
        return path if os.access(path, os.X_OK) else None
    return which("qemu-system-ppc64")
