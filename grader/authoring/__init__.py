"""Course authoring: the course and its assignments' settings, the exercise declaration, data
sets, the students' notebooks and public self-check data (grade assign), and the Gradescope
autograder zip.
"""
