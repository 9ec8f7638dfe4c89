"""Late work: an assignment's due date and penalty, and what a late file costs.

The policy lives in the assignment's settings (`[late]`); it is applied to the results on
every run (like an instructor's override), so changing a due date or granting an extension
regrades nothing.

When a file came in is what the LMS's export says (grader.grading.results.Lateness): a time where
it gives one (Gradescope's metadata, a file time the export keeps), else only Canvas's
`_LATE_` marker, which carries no time. A marked file whose time is unknown, or not after
the due date, counts as one day late: the LMS judged it late, and one started day is the
least lateness can be. A student with an extension is not charged for a marker alone: the
LMS judged the file against the date without the extension, so the marker says nothing
about the extended one.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field

from grader.grading.results import LATE, Adjustment, Lateness
from grader.students.identity import shown

DAY = timedelta(days=1)
SHOWN_TIME = "%Y-%m-%d %H:%M %Z"


def with_offset(due: datetime) -> datetime:
    """A due date is a moment: without its UTC offset it would move with the machine's
    clock, so a naive one is refused at load."""
    if due.tzinfo is None or due.utcoffset() is None:
        raise ValueError(f"the due date {due.isoformat()} has no UTC offset; write it with "
                         "one, e.g. 2025-03-01T23:59:00-05:00 or 2025-03-01T23:59:00Z")
    return due


@dataclass(frozen=True)
class LatePolicy:
    """`[late]` in an assignment's settings: the due date (with its UTC offset), the share
    of the assignment's points taken off per started day late after the grace period, the
    most it may take, and extensions by student (days added to their due date)."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    due: Annotated[datetime, AfterValidator(with_offset)]
    penalty_per_day: Annotated[float, Field(ge=0, le=1)] = 0.1
    grace_minutes: Annotated[float, Field(ge=0)] = 0.0
    max_penalty: Annotated[float, Field(ge=0, le=1)] = 1.0
    extensions: dict[str, Annotated[float, Field(ge=0)]] = field(default_factory=dict)

    def extension(self, student: str, lms_id: str | None) -> float:
        """The days a student's due date moves, keyed by their id or their LMS id; where
        both are keyed, the longer."""
        keys = {normal(student), normal(lms_id or "")}
        return max((days for key, days in self.extensions.items() if normal(key) in keys),
                   default=0.0)


def normal(key: str) -> str:
    """Ids compare as NFC, as grader.students.identity makes them."""
    return unicodedata.normalize("NFC", key.strip())


def late_penalty(policy: LatePolicy | None, lateness: Lateness | None, student: str,
                 lms_id: str | None, possible: float) -> Adjustment | None:
    """The points a late file costs, with the reason a student reads; None where there is
    no policy or the file was on time. `possible` is the assignment's points."""
    if policy is None or lateness is None:
        return None
    extension = policy.extension(student, lms_id)
    days = days_late(policy, lateness, extension)
    if days == 0:
        return None
    share = min(days * policy.penalty_per_day, policy.max_penalty)
    points = round(share * possible, 2)
    return Adjustment(LATE, None, points, reason(policy, lateness, extension, days, points))


def days_late(policy: LatePolicy, lateness: Lateness, extension: float) -> int:
    """Started days after the due date, the extension and the grace period; a marker whose
    time is unknown or not after the due date, one (none with an extension)."""
    submitted = moment(lateness.submitted_at)
    if submitted is not None and submitted > policy.due:
        deadline = policy.due + extension * DAY + timedelta(minutes=policy.grace_minutes)
        return max(0, math.ceil((submitted - deadline) / DAY))
    return int(lateness.marked_late and extension == 0)


def moment(text: str | None) -> datetime | None:
    """An ISO 8601 time with its offset; None for none, an unreadable one or a naive one
    (it could be any zone's), which leaves the LMS's marker to decide."""
    try:
        parsed = datetime.fromisoformat(text or "")
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None else None


def reason(policy: LatePolicy, lateness: Lateness, extension: float, days: int,
           points: float) -> str:
    """What the student reads: when it came in, the due date, the days, the rate and cap."""
    submitted = moment(lateness.submitted_at)
    shown_at = submitted and shown_time(submitted.astimezone(policy.due.tzinfo))
    if submitted is None:
        when = "marked late by the LMS, which gives no time, so counted as 1 day late"
    elif submitted <= policy.due:
        when = (f"marked late by the LMS, though the time it gives ({shown_at}) is not after "
                "the due date, so counted as 1 day late")
    else:
        when = f"handed in {shown_at}"
    given = []
    if extension:
        given.append(f"an extension of {number(extension)} day(s)")
    if policy.grace_minutes:
        given.append(f"a grace period of {number(policy.grace_minutes)} minute(s)")
    due = f"due {shown_time(policy.due)}" + (f" with {' and '.join(given)}" if given else "")
    return (f"{when}; {due}; {days} started day(s) late at "
            f"{percent(policy.penalty_per_day)} of the points a day, at most "
            f"{percent(policy.max_penalty)}: {number(points)} point(s) off.")


def shown_time(moment: datetime) -> str:
    """A time with its offset, to the minute."""
    return moment.strftime(SHOWN_TIME)


def number(value: float) -> str:
    return f"{value:g}"


def percent(share: float) -> str:
    return f"{share * 100:g}%"


def unknown_extensions(policy: LatePolicy | None, assignment: str,
                       known: Collection[str]) -> list[str]:
    """Extensions granted to no one graded: each key that is neither a student's id nor
    their LMS id among `known`, so a typo does not silently cost someone their days."""
    if policy is None:
        return []
    ids = {normal(name) for name in known}
    return [f"{assignment}: the extension for {shown(key)} names no student graded (keys are "
            "a student's id or LMS id): check the [late] extensions of its settings"
            for key in sorted(policy.extensions) if normal(key) not in ids]
