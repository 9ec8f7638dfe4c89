"""Who handed in what: submissions as folders and LMS exports, student ids and names, the
roster, and what adjusts a grade (overrides, the late policy).
"""
