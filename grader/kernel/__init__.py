"""What the grading kernel runs inside the student's kernel: probing and the data loader
(with the exercises' *_probes modules, which import only this package).

Nothing here imports the grader side (checks, settings, the sandbox, the kernel pool, nbclient):
the kernel is on the other side of the trust boundary (tests/test_layout.py keeps it so).
The students' self-check is grader/selfcheck.py: it evaluates the grader's public checks.
"""
