"""The class summary renders in a real headless Chromium, with no network: charts and table."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from bs4 import BeautifulSoup
from test_report import _result, _test

from grader.report import write_summary

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")


def rendered_dom(page, profile) -> BeautifulSoup:
    """The DOM after Chromium loaded the page: what a browser really shows."""
    completed = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return BeautifulSoup(completed.stdout, "html.parser")


def test_the_summary_shows_its_charts_and_table_in_a_browser(tmp_path):
    results = [
        _result("ada", [_test("softmax.values", "softmax", 2, 2), _test("quiz.c", "quiz", 1)]),
        _result("bo", [_test("softmax.values", "softmax", 0, 2), _test("quiz.c", "quiz", 1)]),
        _result("cy", [_test("softmax.values", "softmax", 0, 2), _test("quiz.c", "quiz", 0)]),
    ]
    page = tmp_path / "summary.html"
    write_summary(results, page)
    dom = rendered_dom(page, tmp_path / "profile")
    histogram = dom.select_one("svg.chart-histogram")
    rates = dom.select_one("svg.chart-pass-rates")
    assert histogram is not None and histogram.select("path, rect")
    assert rates is not None and "softmax.values" in rates.get_text()
    rows = dom.select(".students tr[data-student]")
    assert [row["data-student"] for row in rows] == ["ada", "bo", "cy"]
    assert not dom.select("script[src], link[href^=http], img[src^=http]")
