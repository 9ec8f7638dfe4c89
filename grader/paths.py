"""Where the grader finds its own files: inside the package, so that a wheel works from any
folder. The course's files are found through grader.authoring.course."""

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
TEMPLATES = PACKAGE / "outputs" / "templates"
