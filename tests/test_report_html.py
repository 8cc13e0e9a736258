"""`spapr-irq report`: one self-contained HTML page, checked in a real headless Chromium (Debian's
package; CI installs it): it renders, loads nothing from the network, logs no console message,
and every matrix cell links to its explain. The screenshot is kept in the test's directory."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from spapr_irq.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="no chromium here (CI installs Debian's)")


def make_report(tmp_path, capsys) -> str:
    out = tmp_path / "report"
    assert main(["report", "--out", str(out), "--host", "power9-linux-5.10", "--host",
                 "power9-nested-linux-5.10", "--guest", "linux-xive"]) == 0
    assert capsys.readouterr().out.endswith("index.html: 18 cells, 9 settings for 2 hosts\n")
    return (out / "index.html").read_text(encoding="utf-8")


def test_the_page_is_self_contained_and_each_cell_links_to_its_explain(tmp_path, capsys):
    page = make_report(tmp_path, capsys)
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing fetched when viewed
    links = re.findall(r'href="#(cell-\d+)"', page)
    assert len(links) == 18 and all(f'id="{anchor}"' in page for anchor in links)
    assert page.count('class="refused"') >= 2 and 'class="kvm"' in page and 'class="emul"' in page
    assert "Settings for the fleet" in page and "<code>ic-mode=xics</code>" in page


def chromium(*args, url):
    return subprocess.run([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                           "--enable-logging=stderr", "--v=0", *args, url],
                          capture_output=True, text=True, timeout=120)


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@needs_chromium
def test_the_report_renders_in_headless_chromium_without_console_messages(tmp_path, capsys):
    assert CHROMIUM, "CI installs chromium (.ci/run)"
    make_report(tmp_path, capsys)
    url = (tmp_path / "report" / "index.html").as_uri()
    shot = tmp_path / "report.png"
    result = chromium(f"--screenshot={shot}", "--window-size=1400,900", url=url)
    assert shot.is_file() and shot.stat().st_size > 10_000, result.stderr[-2000:]
    print(f"screenshot: {shot}")
    assert console_messages(result.stderr) == []
    dom = chromium("--dump-dom", url=url).stdout
    assert "Mode matrix" in dom and dom.count('href="#cell-') == 18


@needs_chromium
def test_a_page_with_a_script_error_is_caught_the_same_way(tmp_path):
    """The console check can fail: a page that throws is reported."""
    assert CHROMIUM
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>nosuchfunction()</script></body></html>")
    result = chromium("--dump-dom", url=bad.as_uri())
    assert any("nosuchfunction is not defined" in m for m in console_messages(result.stderr))


def test_report_needs_out_and_out_is_for_report(capsys):
    assert main(["report", "--host", "tcg"]) == 2
    assert main(["resolve", "--out", "x"]) == 2
