"""The class summary renders in a real headless Chromium, with no network: charts and table."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from bs4 import BeautifulSoup
from test_report import _result, _test

from grader.outputs.report import write_summary

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
        _result("dee", [], missing="no notebook softmax_regression.ipynb was handed in",
                possible=3.0, name="Dée"),
    ]
    page = tmp_path / "summary.html"
    write_summary(results, page)
    dom = rendered_dom(page, tmp_path / "profile")
    histogram = dom.select_one("svg.chart-histogram")
    rates = dom.select_one("svg.chart-pass-rates")
    assert histogram is not None and histogram.select("path, rect")
    assert histogram.title.get_text() == "Histogram of 3 scores out of 3"  # dee is not a 0
    assert rates is not None and "softmax.values" in rates.get_text()
    rows = dom.select(".students tr[data-student]")
    assert [row["data-student"] for row in rows] == ["ada", "bo", "cy", "dee"]
    missing = dom.select_one('.heatmap tr[data-student="dee"]')
    assert missing.th.get_text() == "Dée" and missing.select_one("td.cell.missing")
    assert not dom.select("script[src], link[href^=http], img[src^=http]")


FOLD = 800  # px: what a 1280 × 800 window shows before any scrolling
MEASURE = """<script>
for (const [name, selector] of Object.entries(%s)) {
  const box = document.querySelector(selector)?.getBoundingClientRect();
  document.body.dataset[name] = box ? String(Math.round(box.bottom)) : "none";
  document.body.dataset[name + "Width"] = box ? String(Math.round(box.width)) : "none";
}
</script>"""


def measured(page, tmp_path, selectors: dict[str, str]) -> BeautifulSoup:
    """The page in a 1280 × 800 window, with the bottom edge (px from the top) of each
    selector's element written on the body: a copy gets the measuring script, the page
    itself has none."""
    copy = tmp_path / f"measured-{page.parent.parent.name}.html"
    copy.write_text(page.read_text().replace("</body>", MEASURE % json.dumps(selectors)
                                             + "</body>"))
    completed = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,800",
         "--dump-dom", copy.as_uri()], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return BeautifulSoup(completed.stdout, "html.parser")


def test_what_to_fix_first_is_above_the_fold(graded_class, tmp_path):
    _, _, out = graded_class
    dom = measured(out / "carol" / "linear_networks" / "report.html", tmp_path,
                   {"fix": "#fix-first", "firstExercise": "details.exercise-section"})
    assert dom.body["data-fix"] != "none" and int(dom.body["data-fix"]) < FOLD
    assert "columns sum to 1" in dom.select_one("#fix-first").get_text()
    assert int(dom.body["data-fix"]) < int(dom.body["data-first-exercise"])


def test_a_blank_notebook_shows_its_banner_above_the_fold(graded_class, tmp_path):
    _, _, out = graded_class
    dom = measured(out / "bob" / "linear_networks" / "report.html", tmp_path,
                   {"banner": "#banner", "fix": "#fix-first"})
    assert dom.body["data-banner"] != "none" and int(dom.body["data-banner"]) < FOLD
    assert dom.body["data-fix"] == "none"


def test_the_class_summary_reads_at_1280_px(graded_class, tmp_path):
    _, _, out = graded_class
    dom = measured(out / "summary.html", tmp_path,
                   {"look": ".needs-a-look", "heat": "table.heatmap",
                    "chart": "svg.chart-exercise-pass-rates"})
    assert int(dom.body["data-look"]) < FOLD  # who to look at comes first
    assert int(dom.body["data-chart-width"]) >= 600  # the bars are drawn large, not shrunk
    looks = {li["data-student"] for li in dom.select(".needs-a-look li")}
    assert {"bob", "dave", "erin"} <= looks
    cells = dom.select('tr[data-student="carol"] td.cell[data-exercise="softmax"] a')
    assert cells and cells[0]["href"] == "carol/linear_networks/report.html#ex-softmax"
    rates = [row["data-exercise"] for row in dom.select(".exercise-rates-table tr[data-exercise]")]
    assert rates[0] in {"softmax", "softmax_training"}  # the hardest first
