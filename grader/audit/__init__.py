"""`grade audit`: how many bugs each exercise's tests catch. Mutants of the reference
(mutate: one plausible bug each), graded by the real pipeline (run), told apart from likely
equivalent ones (equivalence), and the instructor's report (report) from the outcomes
(outcome)."""
