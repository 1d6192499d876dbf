"""The replay's HTML report opened in a real headless browser (Debian's chromium).

Checks that the charts render: after load, the page's own script counts the SVG charts
the browser laid out (non-empty bounding box, with shapes); the DOM is dumped and those
counts read back; a screenshot is decoded and must show the charts' colours.

Without chromium the test is skipped — except under CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from support import POLICIES

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-extensions", "--no-first-run", "--hide-scrollbars"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    message = "chromium is not installed (apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(message + ": required under CI")
    pytest.skip(message)


@pytest.fixture(scope="module")
def report_file(tmp_path_factory):
    from integrations.replay.generate import generate
    from integrations.replay.records import write_records
    from integrations.replay.report_html import render_html
    from integrations.replay.run import replay_file
    from plugin.policy import load_policies

    directory = tmp_path_factory.mktemp("replay-html")
    changed = directory / "policies"
    shutil.copytree(POLICIES, changed)
    plans = changed / "plans.yaml"
    plans.write_text(plans.read_text().replace("first_response: 2h", "first_response: 90m"))
    history = directory / "history.jsonl"
    write_records(generate(3000, load_policies(POLICIES), seed=4, days=30), history)
    result = replay_file(history, POLICIES, compare_dir=changed, jobs=1)
    path = directory / "report.html"
    path.write_text(render_html(result), encoding="utf-8")
    plans_seen = len(result.summary.by_plan())
    calendars_seen = len(result.summary.arrivals)
    return path, 2 + plans_seen + calendars_seen, calendars_seen  # achievement, trend, histograms, heat maps


def _run(browser: str, args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=90)


def test_charts_render_in_chromium(report_file, tmp_path):
    browser = chromium()
    path, expected_charts, heatmaps = report_file
    done = _run(browser, ["--virtual-time-budget=5000", "--dump-dom", path.as_uri()], tmp_path / "profile")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    html_tag = re.search(r"<html[^>]*>", dom)
    assert html_tag, dom[:500]
    attributes = dict(re.findall(r'([\w-]+)="([^"]*)"', html_tag.group(0)))
    assert int(attributes["data-charts"]) == expected_charts
    assert int(attributes["data-charts-rendered"]) == expected_charts  # every chart laid out with shapes
    assert int(attributes["data-chart-marks"]) > 168 * 2  # heat-map cells, bars, lines
    assert len(re.findall(r'<svg class="chart', dom)) == expected_charts
    assert len(re.findall(r'<rect class="cell', dom)) == 168 * heatmaps  # one cell per hour of the week


def test_screenshot_shows_the_charts(report_file, tmp_path):
    browser = chromium()
    path, _, _ = report_file
    shot = tmp_path / "report.png"
    done = _run(browser, ["--window-size=1000,1600", f"--screenshot={shot}", path.as_uri()], tmp_path / "profile")
    assert shot.exists(), done.stderr[-2000:]
    width, height, pixels = read_png(shot.read_bytes())
    assert (width, height) == (1000, 1600)
    colours = {pixels[i:i + 3] for i in range(0, len(pixels), 3 * 7)}  # a sample of pixels
    assert len(colours) > 50  # not blank: text, bars, heat-map shades
    assert any(_near(c, (0x3b, 0x6f, 0xb6)) for c in colours)  # the achievement bars' blue
    assert any(_near(c, (0x2e, 0x7d, 0x4f)) for c in colours)  # histogram bars within target
    assert any(_near(c, (0xc8, 0x45, 0x3b)) for c in colours)  # ... and beyond it


def _near(c: bytes, rgb: tuple[int, int, int], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(c, rgb))


def read_png(data: bytes) -> tuple[int, int, bytes]:
    """Decode an 8-bit RGB/RGBA PNG (what chromium writes) to RGB bytes; no imaging library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), (depth, colour)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    out = bytearray()
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = previous[i]
            c = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        previous = line
        if channels == 3:
            out += line
        else:
            for i in range(0, stride, 4):
                out += line[i:i + 3]
    return width, height, bytes(out)
