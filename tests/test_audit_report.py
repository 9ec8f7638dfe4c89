"""The audit's report, from an Audit built by hand (no grading): the page a course author
reads and the JSON a course's CI reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from grader.audit.outcome import EQUIVALENT, KILLED, NOT_GRADED, SURVIVED, Audit, Outcome
from grader.audit.report import percent, render_audit, write_audit

SCRIPT = "<script>alert(1)</script>"
SGD_DIFF = ("--- reference\n+++ mutant\n@@ -3,3 +3,2 @@\n     param -= lr * param.grad\n"
            "-    param.grad.zero_()\n+    pass  # " + SCRIPT + "\n")


def mutant(function: str, operator: str, line: int, state: str, **fields) -> Outcome:
    return Outcome(name=f"{function}.{operator}.L{line}", function=function, operator=operator,
                   line=line, description=f"{operator} at line {line}", assignment="linreg",
                   exercise="linreg", state=state,
                   diff=fields.pop("diff", f"--- a\n+++ b\n-x = {line}\n+x = -{line}\n"), **fields)


@pytest.fixture(scope="module")
def audit() -> Audit:
    """sgd: 1 killed, 1 survived, 1 equivalent (50%, weak); squared_loss: 3 killed, 1 not
    graded (100%)."""
    return Audit(
        outcomes=[
            mutant("squared_loss", "arith", 2, KILLED, killed_by=("linreg.loss_values",),
                   messages={"linreg.loss_values": "Expected " + "0.5 " * 100 + SCRIPT}),
            mutant("squared_loss", "sign", 2, KILLED, killed_by=("linreg.loss_values",)),
            mutant("squared_loss", "constant", 2, KILLED, killed_by=("linreg.loss_shape",)),
            mutant("squared_loss", "dim", 2, NOT_GRADED, note="the kernel died: grader fault"),
            mutant("sgd", "drop", 4, SURVIVED, diff=SGD_DIFF, score=33.0, max_score=33.0,
                   note="differs from the reference on seed 3",
                   messages={"linreg.sgd_step": "accepted " + SCRIPT}),
            mutant("sgd", "inplace", 3, KILLED, killed_by=("linreg.sgd_step",)),
            mutant("sgd", "swap_args", 3, EQUIVALENT, note="same values on 20 seeds"),
        ],
        tests={"linreg": ["linreg.loss_values", "linreg.loss_shape", "linreg.sgd_step",
                          "linreg.sgd_noop"]},
        seconds={"linreg": 125.0}, seed=7, notes=["sampled 7 mutants"])


@pytest.fixture(scope="module")
def page(audit: Audit) -> BeautifulSoup:
    return BeautifulSoup(render_audit(audit), "html.parser")


def test_headline_gives_the_score_and_the_run(page: BeautifulSoup) -> None:
    headline = page.find(id="score").get_text(" ", strip=True)
    assert "80%" in headline and "4 of 5" in headline
    assert page.select_one(".stats .made strong").get_text() == "7"
    run = page.find(id="run").get_text(" ", strip=True)
    assert "7" in run and "linreg: 2 min 05 s" in run


def test_functions_worst_first_with_their_figures(page: BeautifulSoup) -> None:
    rows = page.select("table.functions tbody tr")
    assert [row["data-function"] for row in rows] == ["sgd", "squared_loss"]
    figures = [[cell.get_text() for cell in row.select("td.num")] for row in rows]
    assert figures == [["3", "1", "1", "1", "0", "50%"], ["4", "0", "3", "0", "1", "100%"]]
    assert rows[0]["class"] == ["weak"] and not rows[1].get("class")


def test_a_score_is_rounded_down_to_the_bar() -> None:
    assert (percent(0.896), percent(1.0), percent(None)) == ("89%", "100%", "—")


def test_survivor_shows_its_diff_and_what_the_grader_gave(page: BeautifulSoup) -> None:
    survivor = page.select_one('.survivor[data-mutant="sgd.drop.L4"]')
    assert survivor.find_parent("section")["data-function"] == "sgd"
    assert survivor.select_one(".description").get_text() == "drop at line 4"
    assert [line.get_text() for line in survivor.select("pre.diff .removed")] == \
        ["-    param.grad.zero_()"]
    assert [line.get_text() for line in survivor.select("pre.diff .added")] == \
        ["+    pass  # " + SCRIPT]
    assert "full marks: 33 / 33" in survivor.select_one(".graded").get_text()
    assert survivor.select_one(".note").get_text() == "differs from the reference on seed 3"
    assert survivor.select_one(".message").get_text() == "accepted " + SCRIPT


def test_every_string_is_escaped_and_nothing_loaded(audit: Audit, page: BeautifulSoup) -> None:
    assert page.find("script") is None  # the <script> in a diff and in messages is text
    assert "&lt;script&gt;" in render_audit(audit)
    assert not page.select("[src], link, iframe, object, embed")


def test_equivalent_killed_idle_and_notes_apart(page: BeautifulSoup) -> None:
    assert [li["data-mutant"] for li in page.select("ul.equivalent > li")] == ["sgd.swap_args.L3"]
    assert "same values on 20 seeds" in page.select_one("ul.equivalent .note").get_text()
    assert page.select_one("ul.equivalent details pre.diff") is not None
    assert not page.select('.survivor[data-mutant="sgd.swap_args.L3"]')
    killed = page.select_one("details#killed")
    assert len(killed.select("tbody tr")) == 4
    first = killed.select_one('tr[data-mutant="squared_loss.arith.L2"] td.message').get_text()
    assert first.endswith("…") and len(first) <= 160
    assert [li.get_text() for li in page.select('ul.idle[data-exercise="linreg"] li')] == \
        ["linreg.sgd_noop"]
    assert "sampled 7 mutants" in page.select_one("ul.notes").get_text()
    not_graded = page.select_one('ul.not-graded li[data-mutant="squared_loss.dim.L2"]')
    assert "grader fault" in not_graded.get_text()


def test_no_survivor_says_so() -> None:
    audit = Audit(outcomes=[mutant("sgd", "drop", 4, KILLED, killed_by=("t",))],
                  tests={"linreg": ["t"]}, seconds={})
    page = BeautifulSoup(render_audit(audit), "html.parser")
    assert page.select_one("p.none") is not None
    assert page.find(id="idle-tests") is None and page.find(id="notes") is None


def test_files_are_written_whole_and_json_round_trips(audit: Audit, tmp_path: Path) -> None:
    out = tmp_path / "audit" / "nested"
    html, data = write_audit(audit, out)
    assert (html, data) == (out / "audit.html", out / "audit.json")
    assert sorted(path.name for path in out.iterdir()) == ["audit.html", "audit.json"]
    assert html.read_text(encoding="utf-8") == render_audit(audit)
    loaded = json.loads(data.read_text(encoding="utf-8"))
    assert loaded["score"] == pytest.approx(0.8) and loaded["seed"] == 7
    assert [m["name"] for m in loaded["mutants"]] == [o.name for o in audit.outcomes]
    assert loaded["mutants"][4]["diff"] == SGD_DIFF
