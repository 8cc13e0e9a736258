"""Rendering outcomes for people and programs: the mode matrix (text, Markdown, JSON) and explain."""

from __future__ import annotations

import json

from .explore import MATRIX_IRQCHIPS, MATRIX_MODES, MatrixCell, Outcome
from .host.host import parse_host
from .policy import RULES


class Legend:
    """Numbers each distinct warning and error text: [w1], [e1], ..."""

    def __init__(self) -> None:
        self.warnings: dict[str, str] = {}
        self.errors: dict[str, str] = {}

    def mark(self, outcome: Outcome) -> str:
        marks = [self._id(self.warnings, "w", text) for text in outcome.warnings]
        if outcome.error:
            marks.append(self._id(self.errors, "e", outcome.error))
        return f" [{','.join(marks)}]" if marks else ""

    @staticmethod
    def _id(table: dict[str, str], prefix: str, text: str) -> str:
        if text not in table:
            table[text] = f"{prefix}{len(table) + 1}"
        return table[text]

    def lines(self, bullet: str = "  ") -> list[str]:
        out = []
        for kind, table in (("warning", self.warnings), ("error", self.errors)):
            for text, ident in table.items():
                first, *rest = text.split("\n")
                out.append(f"{bullet}[{ident}] {kind}: {first}")
                pad = " " * (len(bullet) + len(ident) + 3 + len(kind) + 2)
                out.extend(pad + line for line in rest)
        return out


def _group(cells: list[MatrixCell]) -> dict[str, dict[tuple[str, str], dict[str, MatrixCell]]]:
    hosts: dict[str, dict[tuple[str, str], dict[str, MatrixCell]]] = {}
    for cell in cells:
        rows = hosts.setdefault(cell.host, {})
        rows.setdefault((cell.ic_mode, cell.guest), {})[cell.kernel_irqchip] = cell
    return hosts


def _columns() -> list[str]:
    return [irqchip or "allowed" for irqchip in MATRIX_IRQCHIPS]


def matrix_text(cells: list[MatrixCell]) -> str:
    legend = Legend()
    out = []
    for host_name, rows in _group(cells).items():
        host = parse_host(host_name)
        sample = next(iter(next(iter(rows.values())).values()))
        out.append(f"host {host_name}: {host.describe()}")
        out.append(f"  options: {_base_options(sample.options)}; modeled: QEMU {sample.outcome.qemu}")
        table = [["ic-mode", "guest", *(f"kernel-irqchip={c}" for c in _columns())]]
        for (mode, guest), by_irqchip in rows.items():
            table.append([mode, guest, *(by_irqchip[c].outcome.cell + legend.mark(by_irqchip[c].outcome)
                                         for c in _columns())])
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        for index, row in enumerate(table):
            out.append("  " + "  ".join(text.ljust(width) for text, width in zip(row, widths)).rstrip())
            if index == 0:
                out.append("  " + "  ".join("-" * width for width in widths))
        out.append("")
    legend_lines = legend.lines()
    if legend_lines:
        out.append("messages (exact QEMU text; hint lines indented):")
        out.extend(legend_lines)
    return "\n".join(out).rstrip() + "\n"


def matrix_markdown(cells: list[MatrixCell]) -> str:
    legend = Legend()
    out = []
    for host_name, rows in _group(cells).items():
        host = parse_host(host_name)
        sample = next(iter(next(iter(rows.values())).values()))
        out.append(f"### {host_name}")
        out.append("")
        out.append(f"{host.describe()}; options `{_base_options(sample.options)}`; modeled: QEMU "
                   f"{sample.outcome.qemu}")
        out.append("")
        out.append("| ic-mode | guest | " + " | ".join(f"kernel-irqchip={c}" for c in _columns()) + " |")
        out.append("|---|---|" + "---|" * len(_columns()))
        for (mode, guest), by_irqchip in rows.items():
            cells_text = [by_irqchip[c].outcome.cell + legend.mark(by_irqchip[c].outcome)
                          for c in _columns()]
            out.append(f"| {mode} | {guest} | " + " | ".join(cells_text) + " |")
        out.append("")
    legend_lines = legend.lines(bullet="- ")
    if legend_lines:
        out.append("Messages:")
        out.append("")
        for line in legend_lines:
            out.append(line if line.startswith("- ") else "  " + line.strip())
    return "\n".join(out).rstrip() + "\n"


def matrix_json(cells: list[MatrixCell]) -> str:
    records = [
        {
            "host": cell.host,
            "guest": cell.guest,
            "ic_mode": cell.ic_mode,
            "kernel_irqchip": cell.kernel_irqchip,
            "options": cell.options,
            **cell.outcome.as_dict(trace=False),
        }
        for cell in cells
    ]
    return json.dumps(records, indent=1) + "\n"


def _base_options(options: str) -> str:
    """The cell's options without the ic-mode/kernel-irqchip the matrix varies."""
    words = options.split()
    out = []
    skip = False
    for i, word in enumerate(words):
        if skip:
            skip = False
            continue
        if word in ("-M", "-machine") and i + 1 < len(words) and "ic-mode=" in words[i + 1]:
            props = [p for p in words[i + 1].split(",")
                     if not p.startswith(("ic-mode=", "kernel-irqchip="))]
            if props:
                out += [word, ",".join(props)]
            skip = True
            continue
        out.append(word)
    return " ".join(out) or "(machine defaults)"


def explain_text(options: str, host: str, guest: str, outcome: Outcome) -> str:
    """The steps the machine took, each with the rule it applied and the guarantee behind it."""
    out = [f"configuration: {options or '(machine defaults)'}", f"host: {host}", f"guest: {guest}",
           f"modeled: QEMU {outcome.qemu}"]
    if outcome.note:
        out.append(f"note: {outcome.note}")
    out.append("")
    seen_rules = []
    for number, step in enumerate(outcome.trace, 1):
        line = f"{number:2}. {step['step']}: "
        first, *rest = step["detail"].split("\n")
        out.append(line + first)
        out.extend(" " * len(line) + more for more in rest)
        rule = step.get("rule")
        if rule:
            out.append(" " * len(line) + f"rule {rule} ({RULES[rule].guarantee})")
            if rule not in seen_rules:
                seen_rules.append(rule)
    out.append("")
    if outcome.result == "ok":
        out.append(f"result: the guest runs {outcome.interrupt_mode.upper()}, "
                   f"{'in-kernel (KVM)' if outcome.backend == 'kvm' else 'emulated in QEMU'}; "
                   f"offered: {outcome.advertised}")
    else:
        out.append(f"result: QEMU stops at {outcome.stage}: {outcome.error}")
    for warning in outcome.warnings:
        out.append("warning: " + warning.replace("\n", "\n         "))
    if outcome.ignored_options:
        out.append("")
        out.append("options accepted that change nothing modeled here:")
        for item in outcome.ignored_options:
            out.append(f"  {item['option']}: {item['why']}")
    if seen_rules:
        out.append("")
        out.append("rules applied:")
        for rule in seen_rules:
            out.append(f"  {rule} [{RULES[rule].guarantee}]: {RULES[rule].text}")
    return "\n".join(out) + "\n"


# --- advise -------------------------------------------------------------------------------------------

def advise_text(settings, hosts: list[str], markdown: bool = False) -> str:
    """The settings, best first: each host's answer, what blocks a move, and why it ranks there."""
    if not settings:
        return ""
    best = settings[0]
    lines = []
    if markdown:
        lines.append("| rank | setting | " + " | ".join(hosts) + " | migratable | why |")
        lines.append("|---" * (len(hosts) + 4) + "|")
    for rank, setting in enumerate(settings, 1):
        cells = []
        for host in hosts:
            answers = [a for a in setting.answers if a.host == host]
            cells.append(", ".join(sorted({a.cell + (" (warns)" if a.warned else "")
                                           for a in answers})))
        movable = "every pair" if not setting.blocked else f"{len(setting.blocked)} move(s) fail"
        if setting.caveats and not setting.blocked:
            movable += " (pending interrupts not always once)"
        why = "; ".join(setting.reasons)
        if markdown:
            lines.append(f"| {rank} | `{setting.name}` | " + " | ".join(cells)
                         + f" | {movable} | {why} |")
        else:
            lines.append(f"{rank}. {setting.name}")
            for host, cell in zip(hosts, cells):
                lines.append(f"     {host:28} {cell}")
            lines.append(f"     migratable: {movable}")
            lines.append(f"     why: {why}")
    lines.append("")
    lines.append(f"recommended: {best.name} ({'; '.join(best.reasons)})")
    return "\n".join(lines) + "\n"


# --- report: one self-contained HTML page ------------------------------------------------------------

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.3em .6em}
th{background:#eee}td.kvm{background:#b7e4b0}td.emul{background:#f6d98b}td.refused{background:#f2a7a0}
td a{color:inherit;text-decoration:none;display:block}pre{background:#f6f6f6;padding:1em;
overflow-x:auto}section{border-top:1px solid #ccc;margin-top:2em}.legend span{padding:.2em .6em;
margin-right:.5em}"""


def _esc(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def report_html(cells, settings, hosts: list[str], title: str = "spapr-irq report") -> str:
    """One page, no network at view time: the mode matrix as a coloured grid (in-kernel,
    emulated, refused), each cell linking to its explain text further down; then the ranked
    settings for the fleet."""
    columns = [(mode, chip) for mode in MATRIX_MODES for chip in ("allowed", "off", "on")]
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>",
           f"<h1>{_esc(title)}</h1>",
           '<p class="legend"><span class="kvm" style="background:#b7e4b0">in-kernel</span>'
           '<span style="background:#f6d98b">emulated</span>'
           '<span style="background:#f2a7a0">refused</span></p>',
           "<h2>Mode matrix</h2><table><tr><th>host</th><th>guest</th>"]
    out += [f"<th>ic-mode={m}<br>kernel-irqchip={c}</th>" for m, c in columns]
    out.append("</tr>")
    rows: dict[tuple[str, str], dict] = {}
    for index, cell in enumerate(cells):
        rows.setdefault((cell.host, cell.guest), {})[(cell.ic_mode, cell.kernel_irqchip)] = \
            (index, cell)
    for (host, guest), row in rows.items():
        out.append(f"<tr><th>{_esc(host)}</th><td>{_esc(guest)}</td>")
        for key in columns:
            index, cell = row[key]
            o = cell.outcome
            kind = "refused" if o.result == "error" else "kvm" if o.backend == "kvm" else "emul"
            out.append(f'<td class="{kind}"><a href="#cell-{index}">{_esc(o.cell)}</a></td>')
        out.append("</tr>")
    out.append("</table>")
    if settings:
        out.append("<h2>Settings for the fleet</h2><table><tr><th>rank</th><th>setting</th>")
        out += [f"<th>{_esc(h)}</th>" for h in hosts]
        out.append("<th>migratable</th><th>why</th></tr>")
        for rank, setting in enumerate(settings, 1):
            out.append(f"<tr><td>{rank}</td><td><code>{_esc(setting.name)}</code></td>")
            for host in hosts:
                answers = [a for a in setting.answers if a.host == host]
                text = ", ".join(sorted({a.cell for a in answers}))
                kind = ("refused" if any(a.error for a in answers) else
                        "kvm" if all("KVM" in a.cell for a in answers) else "emul")
                out.append(f'<td class="{kind}">{_esc(text)}</td>')
            movable = "every pair" if not setting.blocked else f"{len(setting.blocked)} fail"
            out.append(f"<td>{_esc(movable)}</td><td>{_esc('; '.join(setting.reasons))}</td></tr>")
        out.append("</table>")
    out.append("<h2>Each cell, explained</h2>")
    for index, cell in enumerate(cells):
        text = explain_text(cell.options, cell.host, cell.guest, cell.outcome)
        out.append(f'<section id="cell-{index}"><h3>{_esc(cell.host)}, {_esc(cell.guest)}: '
                   f'ic-mode={_esc(cell.ic_mode)}, kernel-irqchip={_esc(cell.kernel_irqchip)}'
                   f"</h3><pre>{_esc(text)}</pre></section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"

