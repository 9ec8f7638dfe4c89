"""A timed step's figures beside the reference's, and whether timing beside it may have
flattered them: the verdict's rule (grader/grading/grade.py), and the kernel's, which
times a step's parts only where its verdict may need them (grader/grading/observe.py)."""

from __future__ import annotations

from grader.authoring.config import Settings
from grader.grading.plan import StepWork
from grader.grading.results import Timing, cpu_key, runnable_key
from grader.sandbox import cgroups

# A step whose ratio to the reference, timed beside it, is above this share of its bound
# is judged against the reference timed again alone; so is one whose kernel ran on more
# than ONE_CORE seconds of CPU time a second (its step runs on one thread).
ALONE_ABOVE = 0.5
ONE_CORE = 1.25


def timing_of(work: StepWork, observations: dict, seconds: dict[str, float],
              reference_seconds: dict[str, float], settings: Settings) -> Timing:
    """A timed step's figures; the student's count only if the step's probes returned."""
    returned = all(observations.get(key, {}).get("ok") for key in work.keys)
    max_ratio = work.step.bound(settings.options[work.exercise])
    cpu = seconds.get(cpu_key(work.name)) if returned else None
    return Timing(work.name, settings.device, seconds.get(work.name) if returned else None,
                  reference_seconds[work.name], max_ratio, cpu,
                  reference_seconds.get(cpu_key(work.name)),
                  seconds.get(runnable_key(work.name)) if returned else None,
                  cgroups.cpu_time_unread() if cpu is None else None)

def flattered(timing: Timing) -> bool:
    """Whether timing beside the reference may have flattered this step: its ratio above
    ALONE_ABOVE of its bound, or its kernel on more than one core while it ran."""
    crowded = (timing.student_cpu_seconds is not None and bool(timing.student_seconds)
               and timing.student_cpu_seconds > ONE_CORE * timing.student_seconds)
    return crowded or (timing.ratio is not None
                       and timing.ratio > ALONE_ABOVE * timing.max_ratio)
