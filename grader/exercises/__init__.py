"""The exercises of the seed course, one module each (with its kernel-side *_probes module).

Nothing here lists them: grader/authoring/exercise.py discovers every module of this package, and
a course's plugins/ folder adds its own.
"""
