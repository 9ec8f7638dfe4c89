"""The number types an exercise's Options use, apart from grader.authoring.config: the
exercises load in the students' self-check, which must not pull in the settings (and with them the
sandbox). pydantic validates them where the settings are read."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

Positive = Annotated[float, Field(gt=0)]
Count = Annotated[int, Field(ge=1)]
Fraction = Annotated[float, Field(gt=0, lt=1)]
