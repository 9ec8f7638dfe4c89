"""What an audit found: each mutant's outcome and the figures per function and exercise.

A mutant is KILLED when a test of the graded exercise failed on it (and passed on the
unmutated reference, graded the same way), SURVIVED when every test passed, EQUIVALENT when
it survived and its observations matched the reference's on other seeds (likely equivalent:
left out of the score, but listed), NOT_GRADED when grading it was a grader fault.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

KILLED, SURVIVED, EQUIVALENT, NOT_GRADED = "killed", "survived", "likely equivalent", \
    "not graded"


@dataclass(frozen=True)
class Outcome:
    """One mutant, as graded: which tests killed it, or what the grader said of it."""

    name: str  # e.g. "sgd.drop.L21"
    function: str
    operator: str
    line: int
    description: str
    assignment: str
    exercise: str  # the exercise module graded (its Exercise's name)
    state: str
    diff: str  # unified diff of the cell against the reference's
    killed_by: tuple[str, ...] = ()  # failed tests' full names
    messages: dict[str, str] = field(default_factory=dict)  # by test: what it said
    score: float | None = None
    max_score: float | None = None
    note: str = ""  # the equivalence evidence, or why it was not graded


@dataclass(frozen=True)
class FunctionScore:
    """The figures of one student function."""

    assignment: str
    exercise: str
    function: str
    made: int
    equivalent: int
    killed: int
    survived: int
    not_graded: int

    @property
    def score(self) -> float | None:
        """Killed over the non-equivalent mutants graded; None where there are none."""
        judged = self.killed + self.survived
        return self.killed / judged if judged else None


@dataclass
class Audit:
    """Every outcome, the tests each graded exercise has, and the seconds per assignment."""

    outcomes: list[Outcome]
    tests: dict[str, list[str]]  # by exercise module: every test's full name
    seconds: dict[str, float]  # by assignment
    seed: int = 0
    notes: list[str] = field(default_factory=list)

    def functions(self) -> list[FunctionScore]:
        """The figures per function, in the order the outcomes came."""
        keys = list(dict.fromkeys((o.assignment, o.exercise, o.function) for o in self.outcomes))
        return [function_score(key, [o for o in self.outcomes
                                     if (o.assignment, o.exercise, o.function) == key])
                for key in keys]

    def score(self) -> float | None:
        """The whole audit's: killed over the non-equivalent mutants graded."""
        killed = sum(f.killed for f in self.functions())
        judged = killed + sum(f.survived for f in self.functions())
        return killed / judged if judged else None

    def idle_tests(self) -> dict[str, list[str]]:
        """By exercise, the tests that killed no mutant: to strengthen or drop."""
        used = {test for outcome in self.outcomes for test in outcome.killed_by}
        return {exercise: [t for t in tests if t not in used]
                for exercise, tests in self.tests.items()}

    def as_dict(self) -> dict:
        return {"score": self.score(), "seed": self.seed, "seconds": self.seconds,
                "functions": [{**asdict(f), "score": f.score} for f in self.functions()],
                "idle_tests": self.idle_tests(), "notes": self.notes,
                "mutants": [asdict(o) for o in self.outcomes]}


def function_score(key: tuple[str, str, str], outcomes: Iterable[Outcome]) -> FunctionScore:
    states = [o.state for o in outcomes]
    return FunctionScore(*key, made=len(states), equivalent=states.count(EQUIVALENT),
                         killed=states.count(KILLED), survived=states.count(SURVIVED),
                         not_graded=states.count(NOT_GRADED))
