"""The quiz is read from the answer cell as text, no kernel: one letter in the forms students
write earns the points, more than one is rejected, and every failure says why. The key is
the reference notebook's answer cell, read grader-side as an observation of its text: the
package, which students can read, holds none, nor does the self-check's data. The
questions are the course's: a table each in the assignment's settings, checked on load, so
a course adds one without touching the package."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat
import pytest
from conftest import BLANK, class_graded, course_of_our_own, with_functions, write_notebook

from grader.authoring.assign import ANSWER_PROMPT
from grader.authoring.config import ConfigError, load_settings
from grader.authoring.course import BUNDLED
from grader.authoring.exercise import lookup
from grader.exercises import quiz
from grader.grading.checks import Context, GraderFault
from grader.grading.results import TestResult
from grader.paths import PACKAGE

SETTINGS_FILE = BUNDLED.assignments / "softmax_regression.toml"
SETTINGS = load_settings(SETTINGS_FILE)
(QUIZ,) = lookup(("quiz",))
CHECKS = {check.name: check for check in QUIZ.configured(SETTINGS.options["quiz"],
                                                          SETTINGS.points, SETTINGS.hidden)}
CHECK = CHECKS["softmax_shift_invariance"]
EXPLANATION = "softmax(x + c) = softmax(x)"


KEY = BUNDLED.reference / "softmax_regression.ipynb"


def key_observations(path: Path = KEY) -> dict:
    return quiz.read_notebook(nbformat.read(path, as_version=4))


def grade(text: str | None, reference: dict | None = None) -> TestResult:
    """The quiz check on an answer cell holding `text`, or on a notebook without the cell,
    against the key of `reference` (the bundled one's by default)."""
    student = {} if text is None else {"quiz.softmax_shift": {"ok": True, "value": text}}
    key = key_observations() if reference is None else reference
    return CHECK.evaluate(Context(student, key, inputs={}))


def grade_notebook(notebook: nbformat.NotebookNode) -> TestResult:
    return CHECK.evaluate(Context(quiz.read_notebook(notebook), key_observations(), {}))


def right_letter() -> str:
    return quiz.parse_choice(reference_answer_cell(), "ABCD")


@pytest.mark.parametrize("text", [
    "C", "c", "(C)", "C.", "**C**", "Answer: C", "answer is c", "`C`", "c)", "  C\n",
    f"{ANSWER_PROMPT}\n\nC",
])
def test_the_right_letter_in_any_usual_form_gets_full_points(text):
    result = grade(text)
    assert (result.passed, result.points) == (True, CHECK.points)
    assert "shift-invariant" in result.message


@pytest.mark.parametrize("text, letter", [
    ("a", "A"), ("(b)", "B"), ("Answer: d", "D"), ("**C**.", "C"),
])
def test_parse_choice_returns_the_chosen_letter_in_upper_case(text, letter):
    assert quiz.parse_choice(text, "ABCD") == letter


@pytest.mark.parametrize("text, letter", [("A", "A"), ("b", "B"), ("(D)", "D")])
def test_a_wrong_letter_fails_with_the_reason(text, letter):
    result = grade(text)
    assert (result.passed, result.points) == (False, 0.0)
    assert result.message.startswith(f"{letter} is not right")
    assert EXPLANATION in result.message


@pytest.mark.parametrize("text", [
    "A, C", "AC", "C or D", "C D", "(A) (C)", "Answer: A or C", "CC",
])
def test_more_than_one_letter_is_rejected_even_with_the_right_one(text):
    result = grade(text)
    assert (result.passed, result.points) == (False, 0.0)
    assert "exactly one of A, B, C, D" in result.message
    assert result.got == text


def test_a_letter_outside_the_choices_is_rejected():
    result = grade("E")
    assert not result.passed
    assert "exactly one of A, B, C, D" in result.message


@pytest.mark.parametrize("text", ["", "   \n", ANSWER_PROMPT, f"**{ANSWER_PROMPT}**"])
def test_an_empty_answer_says_no_answer_was_given(text):
    result = grade(text)
    assert not result.passed
    assert result.message.startswith("no answer given")


def test_a_missing_answer_cell_says_it_is_missing():
    result = grade(None)
    assert not result.passed
    assert "answer cell is missing" in result.message
    assert "answer:softmax_shift" in result.message


def test_the_answer_is_read_from_the_tagged_cell():
    assert grade_notebook(with_functions({}, answer="(C)")).passed
    assert not grade_notebook(with_functions({}, answer="B")).passed


def test_the_assignment_as_handed_out_has_no_answer():
    result = grade_notebook(nbformat.read(BLANK, as_version=4))
    assert result.message.startswith("no answer given")


def test_a_notebook_without_the_tagged_cell_is_missing_the_answer():
    notebook = with_functions({})
    for cell in notebook.cells:
        cell.metadata.pop("tags", None)
    assert "answer cell is missing" in grade_notebook(notebook).message


def reference_answer_cell() -> str:
    return quiz.answer_cells(nbformat.read(KEY, as_version=4))["softmax_shift"]


def holds_the_key(path: Path) -> bool:
    """Whether `path` holds the reference's answer cell, or the question's id next to the
    right letter as a mapping would put them."""
    raw, letter = path.read_bytes(), right_letter()
    mapping = re.compile(rb"softmax_shift\W{1,8}" + letter.encode() + rb"\b", re.I)
    return reference_answer_cell().encode() in raw or bool(mapping.search(raw))


def grader_files(shipped_data: bool) -> list[Path]:
    """The package's files, as a sandboxed kernel may read them (bytecode left aside: it is
    compiled from these; the course's solutions and settings: the sandbox hides them), with
    or without the data `grade assign` ships in the course's public/."""
    hidden = [folder.resolve() for folder in BUNDLED.secrets]
    return [path for path in PACKAGE.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
            and not any(path.is_relative_to(folder) for folder in hidden)
            and (path.parent.name == "public") == shipped_data]


def test_the_quiz_module_names_no_right_letter():
    letter = right_letter()
    tree = ast.parse(Path(quiz.__file__).read_text())
    literals = {node.value.upper() for node in ast.walk(tree)
                if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    assert letter not in literals


def test_no_grader_source_holds_the_quiz_key():
    files = grader_files(shipped_data=False)
    assert Path(quiz.__file__) in files
    assert [path for path in files if holds_the_key(path)] == []


def test_the_shipped_public_data_holds_no_quiz_key():
    files = grader_files(shipped_data=True)
    assert files
    assert [path for path in files if holds_the_key(path)] == []


def with_reference_answer(answer: str) -> dict:
    """The key read from a copy of the reference whose answer cell holds `answer`."""
    notebook = nbformat.read(KEY, as_version=4)
    for cell in notebook.cells:
        if f"{quiz.ANSWER_TAG}softmax_shift" in cell.metadata.get("tags", []):
            cell.source = answer
    return quiz.read_notebook(notebook)


@pytest.mark.parametrize("letter", "ABCD")
def test_the_letter_accepted_is_the_one_in_the_reference_answer_cell(letter):
    key = with_reference_answer(f"### BEGIN ANSWER\n{letter}\n### END ANSWER")
    accepted = {choice for choice in "ABCD" if grade(choice, key).passed}
    assert accepted == {letter}
    assert grade(letter.lower(), key).message.startswith(f"{letter}: softmax is shift-invariant")


@pytest.mark.parametrize("answer, problem", [
    ("### BEGIN ANSWER\n### END ANSWER", "no answer given"),
    ("### BEGIN ANSWER\nA or C\n### END ANSWER", "the answer must be exactly one of"),
])
def test_a_reference_without_one_letter_is_an_authoring_error(answer, problem):
    """The grader's own key is wrong: it stops (exit 2), no student loses the mark."""
    with pytest.raises(GraderFault, match=f"the reference's answer to softmax_shift: {problem}"):
        grade("C", with_reference_answer(answer))
    with pytest.raises(GraderFault, match="'quiz.softmax_shift', which the grader never made"):
        grade("C", {})


def test_in_the_self_check_the_quiz_says_the_grader_marks_it():
    shipped = quiz.shareable(key_observations())
    result = grade("C", shipped)
    assert not result.passed
    assert "marked by the grader" in result.message
    assert grade("", shipped).message.startswith("no answer given")  # the student's cell first


def test_the_bundled_question_is_declared_by_the_course_with_its_points():
    assert list(CHECKS) == ["answers_with_one_of_the_choices", "softmax_shift_invariance"]
    assert (CHECKS["answers_with_one_of_the_choices"].points, CHECK.points) == (0, 2)
    assert not [check for check in quiz.CHECKS if check.name == "softmax_shift_invariance"]


QUESTION = '[quiz.questions.softmax_shift_invariance]\ncell = "softmax_shift"\n'


def declared(edit: tuple[str, str], folder: Path) -> Path:
    """The bundled settings with one edit of the quiz's tables, written in `folder`."""
    text = SETTINGS_FILE.read_text(encoding="utf-8")
    assert text.count(edit[0]) == 1
    path = folder / SETTINGS_FILE.name
    path.write_text(text.replace(*edit), encoding="utf-8")
    return path


@pytest.mark.parametrize("edit, problem", [
    (('choices = "ABCD"', 'choices = "ABCA"'),
     "quiz.questions.softmax_shift_invariance.choices: Value error, each letter may be a "
     "choice once"),
    (('choices = "ABCD"', 'choices = "abcd"'),
     "quiz.questions.softmax_shift_invariance.choices: String should match pattern"),
    (('choices = "ABCD"', 'answer = "C"'),
     "quiz.questions.softmax_shift_invariance.answer: Unexpected keyword argument"),
    (('cell = "softmax_shift"\n', ''),
     "quiz.questions.softmax_shift_invariance.cell: Field required"),
    (('points = 2', 'points = -1'),
     "quiz.questions.softmax_shift_invariance.points: Input should be greater than or equal"),
    (("[quiz.questions.softmax_shift_invariance]", "[quiz.questions.Shift-Invariance]"),
     "quiz.questions.Shift-Invariance.[key]: String should match pattern"),
    (("[quiz.questions.softmax_shift_invariance]",
      "[quiz.questions.answers_with_one_of_the_choices]"),
     "quiz.questions: Value error, answers_with_one_of_the_choices is the quiz's own test"),
    ((QUESTION, f"{QUESTION}right = 'r'\nwrong = 'w'\n\n[quiz.questions.again]\n"
                 'cell = "softmax_shift"\n'),
     "quiz.questions: Value error, two questions read the answer cell softmax_shift"),
    (("[quiz.questions.softmax_shift_invariance]", "[not_quiz.softmax_shift_invariance]"),
     "quiz.questions: Field required"),
])
def test_a_bad_question_stops_the_load_naming_the_file_and_the_key(tmp_path, edit, problem):
    path = declared(edit, tmp_path)
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert problem in str(raised.value)


def test_the_points_table_may_set_a_questions_points(tmp_path):
    path = declared(("[points]\n", '[points]\n"quiz.softmax_shift_invariance" = 5\n'), tmp_path)
    settings = load_settings(path)
    (check,) = [c for c in QUIZ.configured(settings.options["quiz"], settings.points, ())
                if c.name == "softmax_shift_invariance"]
    assert check.points == 5


# --- a course adds a question of its own -----------------------------------------------------

ASSIGNMENT = "quiz_week"
NEW = ("[quiz.questions.learning_rate]\ncell = \"lr\"\nchoices = \"ABC\"\npoints = 3\n"
       "right = \"a smaller rate takes smaller steps.\"\n"
       "wrong = \"halving the rate halves every step of gradient descent\"\n")


def answer_cell(tag: str, text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text, metadata={"tags": [f"{quiz.ANSWER_TAG}{tag}"]})


def add_question(root: Path) -> None:
    """What the instructor writes: an assignment whose notebook asks the bundled question
    and one of its own (its key in the reference), and its settings' tables."""
    bundled = nbformat.read(root / "reference" / "softmax_regression.ipynb", as_version=4)
    (shift,) = [cell for cell in bundled.cells
                if f"{quiz.ANSWER_TAG}softmax_shift" in cell.metadata.get("tags", [])]
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("Halving the learning rate makes each step (A) twice "
                                      "as long (B) half as long (C) the same."),
        answer_cell("lr", "### BEGIN ANSWER\nB\n### END ANSWER"), shift])
    nbformat.write(notebook, root / "reference" / f"{ASSIGNMENT}.ipynb")
    settings = SETTINGS_FILE.read_text(encoding="utf-8")
    question = settings[settings.index(QUESTION):settings.index("\n[concise_softmax]")]
    (root / "assignments" / f"{ASSIGNMENT}.toml").write_text(
        f'exercises = ["quiz"]\n\n{question}\n{NEW}', encoding="utf-8")


@pytest.fixture(scope="module")
def course_quiz(tmp_path_factory):
    """A course made by `grade init` with the question added, its notebook built, and one
    student graded: the bundled question right, the new one wrong."""
    root = tmp_path_factory.mktemp("quiz")
    with course_of_our_own(root, add_question, ASSIGNMENT) as runner:
        notebook = nbformat.read(root / "course" / "exercises" / f"{ASSIGNMENT}.ipynb",
                                 as_version=4)
        answers = {f"{quiz.ANSWER_TAG}lr": "(C)", f"{quiz.ANSWER_TAG}softmax_shift": right_letter()}
        for cell in notebook.cells:
            for tag in cell.metadata.get("tags", []):
                cell.source = answers.get(tag, cell.source)
        write_notebook(notebook, root / "class" / "carol.ipynb")
        yield root, class_graded(runner, ASSIGNMENT)


def test_the_students_notebook_holds_no_answer(course_quiz):
    root, _ = course_quiz
    notebook = nbformat.read(root / "course" / "exercises" / f"{ASSIGNMENT}.ipynb",
                             as_version=4)
    assert quiz.answer_cells(notebook) == {"lr": ANSWER_PROMPT, "softmax_shift": ANSWER_PROMPT}


def test_a_question_the_course_adds_is_graded_beside_the_bundled_one(course_quiz):
    root, summary = course_quiz
    carol = summary["students"]["carol"][ASSIGNMENT]
    assert (carol["score"], carol["max_score"]) == (2, 5)
    saved = json.loads((root / "out" / "carol" / ASSIGNMENT / "results.json").read_text())
    tests = {test["name"]: test for test in saved["tests"]}
    assert list(tests) == ["quiz.answers_with_one_of_the_choices",
                           "quiz.softmax_shift_invariance", "quiz.learning_rate"]
    assert tests["quiz.answers_with_one_of_the_choices"]["message"].startswith(
        f"softmax_shift: {right_letter()}; lr: C, one of the choices")
    assert tests["quiz.softmax_shift_invariance"]["passed"]
    assert tests["quiz.softmax_shift_invariance"]["message"] == grade(right_letter()).message
    wrong = tests["quiz.learning_rate"]
    assert (wrong["passed"], wrong["points"], wrong["max_points"]) == (False, 0, 3)
    assert wrong["message"] == ("C is not right: halving the rate halves every step of "
                                "gradient descent")


def test_the_course_adds_no_key_to_its_self_check_data(course_quiz):
    root, _ = course_quiz
    shipped = root / "course" / "public" / f"{ASSIGNMENT}.pt"
    assert b"learning_rate" in shipped.read_bytes()  # the question is shipped, not its key
    assert not holds_the_key(shipped)
