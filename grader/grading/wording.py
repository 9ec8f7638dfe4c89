"""The generic words people read, said once: the causes' titles, the hints for the kinds of
error, the banner's and the tables' fixed phrases. The reports, the templates (as `words`),
the command line and the checks take them from here, so a rewording is one edit and no code
decides anything by a message's words (it reads a test's `cause`). What one exercise says
of its own checks stays in that exercise.
"""

from __future__ import annotations

from grader.grading.results import Cause
from grader.sandbox.budget import OUT_OF_TIME

# Added to a failed probe's message, by the kind of error it raised.
HINTS = {
    "NotImplementedError": "not implemented yet: replace `raise NotImplementedError()`",
    "Timeout": "it ran too long (an infinite loop?)",
    "Missing": "the function is missing: keep the name and signature the notebook gives",
    "Unobserved": "the grader could not run it",
    OUT_OF_TIME: ("the submission had used its whole time budget before this ran: make "
                  "the slow or crashing cells named in the notes finish"),
}

HIDDEN_TEXT = ("[what it said is not shown for a hidden test, as it could quote the hidden "
               "inputs: call the function on inputs of your own to see it]")

# The title of a cause that failed every test: the report's banner, the summary's flag.
OTHER_CAUSE = "other"
CAUSE_TITLES = {
    Cause.BLANK: "Nothing is implemented yet",
    Cause.UNREADABLE: "The notebook could not be read",
    Cause.KERNEL: "The notebook could not run: its kernel did not start",
    Cause.MISSING: "No notebook was handed in for this assignment",
    Cause.REFUSED: "The submission was not graded",
    OTHER_CAUSE: "Every test failed for the same reason",
}
BLANK_MESSAGE = ("every function still raises NotImplementedError and no answer is written: "
                 "replace each `raise NotImplementedError()` with your code and run the "
                 "notebook's check() cells")
BANNER_REASON = ("Every test below failed for this reason alone: fix it and hand the "
                 "notebook in again.")

# Why an instructor should open a submission, beside a common cause's title.
TIMED_OUT = "timed out"
RAN_UNSANDBOXED = "ran unsandboxed"

FIX_FIRST = "Fix this first"
NOT_HANDED_IN = "not handed in"
NOT_MEASURED = "not measured"
NOT_JUDGED = "not judged"
NOT_JUDGED_WHY = "not judged, an earlier failure left nothing to judge"
KERNEL_NOT_STARTED = "the kernel could not start"


def not_graded(why: str) -> str:
    """The message of every test of a submission that was not graded, saying why."""
    return f"not graded: {why}"


def shorten(text: str, limit: int) -> str:
    """`text` in at most `limit` characters, cut at a word boundary with an ellipsis: a cut
    mid-word ("expecte") reads as a typo of the grader's."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:  # a single long word (a path, a tensor) is cut where it must be
        cut = cut[:space]
    return cut.rstrip(" ,;:(") + "…"
