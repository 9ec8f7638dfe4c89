"""Late work: an assignment's due date and penalty, and what a late file costs.

The policy lives in the assignment's settings (`[late]`); it is applied to the results on
every run (like an instructor's override), so changing a due date or granting an extension
regrades nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field


@dataclass(frozen=True)
class LatePolicy:
    """`[late]` in an assignment's settings: the due date (with its UTC offset), the share
    of the assignment's points taken off per started day late after the grace period, the
    most it may take, and extensions by student (days added to their due date)."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    due: datetime
    penalty_per_day: Annotated[float, Field(ge=0, le=1)] = 0.1
    grace_minutes: Annotated[float, Field(ge=0)] = 0.0
    max_penalty: Annotated[float, Field(ge=0, le=1)] = 1.0
    extensions: dict[str, Annotated[float, Field(ge=0)]] = field(default_factory=dict)
