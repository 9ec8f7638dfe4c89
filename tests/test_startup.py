"""`grade --help`, `--version` and usage errors answer at once: they import no torch.

Importing torch costs seconds; tests never time it, they check that it is not imported.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Runs the CLI in a fresh interpreter and reports its exit code, its output and whether
# anything imported torch.
PROBE = """
import json, sys
from click.testing import CliRunner
from grader.cli import main
result = CliRunner().invoke(main, sys.argv[1:])
print(json.dumps([result.exit_code, result.output, "torch" in sys.modules]))
"""


def run_cli(*args: str) -> tuple[int, str, bool]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True,
                          text=True, check=True, timeout=120)
    return tuple(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize("args, code, says", [
    (["--help"], 0, "Autograder for Dive-into-Deep-Learning"),
    (["--version"], 0, "version"),
    (["run", "--help"], 0, "Grade every submission in FOLDER"),
    (["assign", "--help"], 0, "Build the student notebooks"),
    (["no-such-folder/"], 2, "does not exist"),
    (["run", "--jobs", "0", "."], 2, "--jobs"),
    (["--course", "/no/such/course", "run", "."], 2, "course"),
    (["run", "grader/outputs/templates"], 2, "holds no notebooks: looked for STUDENT.ipynb"),
])
def test_help_and_usage_errors_import_no_torch(args, code, says):
    exit_code, output, imported_torch = run_cli(*args)
    assert exit_code == code, output
    assert says in output
    assert not imported_torch
