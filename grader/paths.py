"""Where the grader finds its own files: the repository it is installed from (editable)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = REPO_ROOT / "templates"
REFERENCE = REPO_ROOT / "reference"
EXERCISES = REPO_ROOT / "exercises"
PUBLIC_DIR = Path(__file__).resolve().parent / "public"  # the self-check's data
