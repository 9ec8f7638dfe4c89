"""What grading writes for people: each student's report, the class summary, grades.csv, the
LMS gradebooks, similarity, the release bundle, Gradescope's results; class_files declares
the list of class-wide outputs.
"""
