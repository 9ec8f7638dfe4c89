"""The grading pipeline of one submission: the assignment's plan, its inputs, the observed run,
the reference, the checks and their assertions, the result.
"""
