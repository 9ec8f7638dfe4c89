"""Finding the submissions in a folder, or in one file: the layouts a class hands in.

Each entry of the folder is read by its own name, so a folder may mix layouts:

- `STUDENT.ipynb` or `STUDENT.zip`: one student's work; `STUDENT/`: a folder of it.
- Canvas's "Download Submissions": flat files `LOGIN_USERID_SUBMISSIONID_ORIGINAL`
  (`LOGIN_LATE_USERID_...` when late). The files of one USERID are one student: `lms_id`
  USERID, `name` LOGIN, each file handed as ORIGINAL with the late marker (and, for a
  file marked late, its time: an unmarked file was on time by Canvas's own due dates).
- Moodle's export: a folder `Full Name_PID_assignsubmission_file_` (or flat files
  `Full Name_PID_assignsubmission_file_ORIGINAL`); the entries of one PID are one student:
  `lms_id` PID (Moodle's "Participant PID"), `name` the full name, the files' times kept.
- Gradescope's "Export Submissions": `submission_metadata.yml` beside `submission_NNN/`
  folders. Every submitter of a folder is a student of their own (a group's members each
  get its work graded): `lms_id` the sid, else the email; the time is `:created_at:`.

Ids (grader.students.identity): the name an entry may claim as its id is a file's stem or a
folder's name, Canvas's LOGIN, Moodle's full name, Gradescope's sid (else email); a
clean ASCII name is its own id, any other is transliterated with `~` and a hash of the
entry's key, which depends on that student's entry alone: the file or folder name, or for
an LMS `canvas/LOGIN_USERID`, `moodle/Full Name_PID`, `gradescope/SID` (a `/` no file
name holds, so no file can take an LMS student's key). The display `name` keeps Unicode.

Zips (a student's, at the top or in their folder, or Canvas's `..._ORIGINAL.zip`) are
unpacked into a folder the grader owns (0700; `unpack_to` or one under the system's
temporary folder, removed at exit), never beside the submissions, within bounds: at most
MAX_ZIP_ENTRIES entries and MAX_UNPACKED_BYTES of real decompressed bytes, no absolute
or `..` names, no links or special files, no nested zips; only notebooks are kept. A bad
zip is a problem of its student's, never a crash.

A single file (`discover(path/to/alice.ipynb)`) is one submission; its caller hides the
file's folder from the kernels as it does a class's folder (grade.py hides path.parent).
"""

from __future__ import annotations

import atexit
import io
import os
import re
import shutil
import stat
import tempfile
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from grader.grading.results import Lateness
from grader.students.identity import identities, shown
from grader.students.submissions import (
    IGNORED_DIRS,
    MAX_NOTEBOOK_BYTES,
    Handed,
    Submission,
    UnsafeFile,
    files_in,
    links_in,
    read_submitted,
)

MAX_ZIP_ENTRIES = 200
MAX_UNPACKED_BYTES = MAX_NOTEBOOK_BYTES
MAX_ZIP_DEPTH = 16
MAX_METADATA_BYTES = MAX_NOTEBOOK_BYTES
CHUNK = 2**20
GRADESCOPE_METADATA = "submission_metadata.yml"
CANVAS = re.compile(r"(?P<login>[^_]+)_(?:(?P<late>LATE)_)?(?P<user>\d+)_(?P<file>\d+)_"
                    r"(?P<original>.+)")
MOODLE = re.compile(r"(?P<name>.+)_(?P<pid>\d+)_assignsubmission_(?P<plugin>[a-z]+)_"
                    r"(?P<original>.*)")
GRADESCOPE_FOLDER = re.compile(r"submission_\d+")


@dataclass
class Entry:
    """One student as the folder shows them: the key their id's hash is taken of (unique
    in the folder), the name that may be their id, and their submission."""

    key: str
    claim: str
    submission: Submission


class Unpacker:
    """Where zips are unpacked: a folder the grader owns (0700), made on first use inside
    `root`, or under the system's temporary folder and removed when the grader exits."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root
        self.folder: Path | None = None

    def fresh(self) -> Path:
        """An empty folder of its own for one zip."""
        if self.folder is None:
            if self.root is not None:
                self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.folder = Path(tempfile.mkdtemp(prefix="dl-grader-unpacked-", dir=self.root))
            if self.root is None:
                atexit.register(shutil.rmtree, self.folder, True)
        return Path(tempfile.mkdtemp(dir=self.folder))

    def unpack(self, archive: Path) -> tuple[list[tuple[Path, str]], list[str]]:
        """The notebooks of a zip, each with its name inside it, and what was wrong."""
        name = shown(archive.name)
        try:
            with zipfile.ZipFile(io.BytesIO(read_submitted(archive))) as opened:
                return unpack_into(opened, name, self.fresh())
        except UnsafeFile as error:
            return [], [f"{error}: not unpacked"]
        except TooLarge as error:
            return [], [f"{name} {error}: not unpacked; hand in the notebooks themselves"]
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError,
                ValueError, OSError) as error:
            return [], [f"{name} is not a zip the grader can read ({type(error).__name__}: "
                        f"{shown(str(error))}): hand in the notebooks themselves"]


class TooLarge(Exception):
    """A zip holds more entries, or more bytes, than the grader unpacks."""


def too_large() -> TooLarge:
    """The refusal of a zip whose contents are over MAX_UNPACKED_BYTES, claimed or read."""
    return TooLarge(f"unpacks to more than {MAX_UNPACKED_BYTES / 2**20:.0f} MiB")


def unpack_into(opened: zipfile.ZipFile, name: str,
                into: Path) -> tuple[list[tuple[Path, str]], list[str]]:
    """Unpack the notebooks of an open zip into `into`, checking each entry's name, kind
    and real size as it is read."""
    entries = opened.infolist()
    if len(entries) > MAX_ZIP_ENTRIES:
        raise TooLarge(f"holds {len(entries):,} entries, more than the {MAX_ZIP_ENTRIES} "
                       "the grader unpacks")
    if sum(info.file_size for info in entries) > MAX_UNPACKED_BYTES:
        raise too_large()
    found: list[tuple[Path, str]] = []
    problems: list[str] = []
    left = MAX_UNPACKED_BYTES
    for info in entries:
        parts = entry_parts(info.filename)
        refusal = refused_entry(info, parts)
        if refusal:
            problems.append(f"{name}: {shown(info.filename)} {refusal}, not unpacked")
        elif parts and not ignored(parts) and parts[-1].lower().endswith(".ipynb"):
            target = into.joinpath(*parts)
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            written = write_entry(opened, info, target, left)
            if written is not None:
                left -= written
                found.append((target, parts[-1]))
            else:
                problems.append(f"{name} holds {shown(info.filename)} twice: the first is "
                                "graded")
    return found, problems


def entry_parts(filename: str) -> tuple[str, ...]:
    """The folders and name of a zip entry (a Windows zip writes '\\')."""
    return tuple(part for part in PurePosixPath(filename.replace("\\", "/")).parts)


def ignored(parts: tuple[str, ...]) -> bool:
    """Entries nobody meant to hand in: macOS's `__MACOSX/` and `._` copies, hidden files,
    checkpoints."""
    return any(part.startswith(".") or part == "__MACOSX" or part in IGNORED_DIRS
               for part in parts)


def refused_entry(info: zipfile.ZipInfo, parts: tuple[str, ...]) -> str | None:
    """Why an entry is not unpacked (the end of a sentence), or None."""
    mode = info.external_attr >> 16
    if info.is_dir():
        return None
    if stat.S_ISLNK(mode):
        return "is a link"
    if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
        return "is not a regular file"
    if (not parts or info.filename.startswith(("/", "\\")) or ".." in parts
            or ":" in parts[0] or len(parts) > MAX_ZIP_DEPTH
            or any(not part.isprintable() or len(part.encode()) > 255 for part in parts)):
        return "has a name the grader does not write (absolute, '..', or unprintable)"
    if parts[-1].lower().endswith(".zip"):
        return "is a zip inside the zip (zips are unpacked one level only)"
    if info.flag_bits & 0x1:
        return "is encrypted"
    return None


def write_entry(opened: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path,
                left: int) -> int | None:
    """Copy one entry to `target` (a new file, never a link's target), counting the bytes
    really decompressed against the `left` the zip may still unpack to: how many it wrote,
    None where the zip held the name already."""
    try:
        handle = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return None
    written = 0
    with os.fdopen(handle, "wb") as out, opened.open(info) as source:
        while chunk := source.read(CHUNK):
            written += len(chunk)
            if written > left:  # what it unpacks to, whatever its header claimed
                raise too_large()
            out.write(chunk)
    return written


def discover(target: Path, unpack_to: Path | None = None) -> tuple[list[Submission], list[str]]:
    """Submissions in the folder `target` (or the one file it names), sorted by student,
    and the problems that belong to no student. Zips are unpacked inside `unpack_to`."""
    unpacker = Unpacker(unpack_to)
    if not target.is_dir():
        found = plain(target, unpacker) if target.exists() else None
        if not isinstance(found, Entry):
            raise NotADirectoryError(f"{target} is not a folder of submissions, nor a "
                                     "notebook (.ipynb) or a zip")
        return identified([found]), []
    if (target / GRADESCOPE_METADATA).is_file():
        entries, problems = gradescope(target, unpacker)
    else:
        entries, problems = listed(target, unpacker)
    return identified(entries), problems


def listed(folder: Path, unpacker: Unpacker) -> tuple[list[Entry], list[str]]:
    """The entries of a folder of plain, Canvas and Moodle entries."""
    entries: dict[str, Entry] = {}
    problems: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.name in IGNORED_DIRS:
            continue
        canvas = CANVAS.fullmatch(path.name) if not path.is_dir() else None
        moodle = MOODLE.fullmatch(path.name)
        if canvas:
            add_canvas(entries, path, canvas, unpacker)
        elif moodle and (path.is_dir() or moodle["original"]):
            add_moodle(entries, path, moodle, unpacker)
        else:
            found = plain(path, unpacker)
            if isinstance(found, Entry):
                entries[found.key] = found
            else:
                problems.append(found)
    for entry in entries.values():
        lms = entry.submission
        if lms.lms_id and not lms.notebooks and not lms.refused:
            lms.problems.append("no notebook among the files handed in")
    return list(entries.values()), problems


def plain(path: Path, unpacker: Unpacker) -> Entry | str:
    """A STUDENT.ipynb, STUDENT.zip or STUDENT/ entry, or why it is none."""
    name = shown(path.name)
    notebook = path.suffix.lower() in (".ipynb", ".zip") and (
        path.is_symlink() or not path.is_dir())
    claim = path.stem if notebook else path.name
    submission = Submission("", path, name=shown(unicodedata.normalize("NFC", claim)))
    if path.is_symlink():
        submission.refused = (f"{name} is a link, not the work itself: links are refused; "
                              "hand in the notebook file")
    elif path.is_dir():
        add_folder(submission, path, unpacker, lateness=False)
        if not submission.notebooks and not submission.refused:
            submission.problems.append(f"the folder {name}/ holds no notebook")
    elif notebook:
        add_file(submission, path, path.name, None, unpacker)
    else:
        return f"{name}: not a notebook (.ipynb), a zip nor a folder, not graded"
    return Entry(path.name, claim, submission)


def add_folder(submission: Submission, folder: Path, unpacker: Unpacker,
               lateness: bool, when: str | None = None) -> None:
    """The notebooks and zips below `folder`, or its refusal if it holds a link; with
    `lateness`, each file's time (`when`, else the file's own)."""
    links = links_in(folder)
    if links:
        submission.refused = (f"the folder {shown(folder.name)}/ holds links "
                              f"({', '.join(map(shown, links[:3]))}): links are refused; "
                              "hand in the files themselves")
        submission.notebooks = []
        return
    for path in files_in(folder, ".ipynb") + files_in(folder, ".zip"):
        time = Lateness(False, when or modified(path)) if lateness else None
        add_file(submission, path, path.name, time, unpacker)


def add_file(submission: Submission, path: Path, original: str,
             lateness: Lateness | None, unpacker: Unpacker) -> None:
    """One handed-in file: a notebook as it is, a zip as the notebooks it holds."""
    if path.is_symlink():
        submission.refused = (f"{shown(path.name)} is a link, not the work itself: links "
                              "are refused; hand in the notebook file")
        return
    if original.lower().endswith(".zip"):
        unpacked, problems = unpacker.unpack(path)
        submission.problems.extend(problems)
        if not unpacked and not problems:
            submission.problems.append(f"{shown(original)} holds no notebook")
        for notebook, inner in unpacked:
            submission.notebooks.append(notebook)
            submission.handed[notebook] = Handed(inner, lateness, via=path)
    elif original.lower().endswith(".ipynb"):
        submission.notebooks.append(path)
        if lateness is not None or original != path.name:
            submission.handed[path] = Handed(original, lateness)
    else:
        submission.problems.append(f"{shown(original)}: not a notebook (.ipynb) nor a zip, "
                                   "not graded")


def modified(path: Path) -> str:
    """A file's modification time (the LMS's time of hand-in, as its export keeps it), ISO
    8601 in UTC."""
    seconds = os.lstat(path).st_mtime
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def lms_entry(entries: dict[str, Entry], key: str, claim: str, path: Path, name: str,
              lms_id: str) -> Entry:
    """The entry of one LMS student, made on their first file."""
    if key not in entries:
        entries[key] = Entry(key, claim, Submission("", path, name=name, lms_id=lms_id))
    return entries[key]


def add_canvas(entries: dict[str, Entry], path: Path, parts: re.Match[str],
               unpacker: Unpacker) -> None:
    """One file of Canvas's export, added to its USERID's submission."""
    login, user = parts["login"], parts["user"]
    entry = lms_entry(entries, f"canvas/{login}_{user}", login, path, shown(login), user)
    # Canvas marks late work itself, knowing every student's due date: a file it did not
    # mark was on time, whatever time the unpacked file carries (an unzip may not keep it).
    late = parts["late"] is not None
    lateness = Lateness(marked_late=late, submitted_at=modified(path) if late else None)
    add_file(entry.submission, path, parts["original"], lateness, unpacker)


def add_moodle(entries: dict[str, Entry], path: Path, parts: re.Match[str],
               unpacker: Unpacker) -> None:
    """One folder (or flat file) of Moodle's export, added to its participant's
    submission."""
    full = unicodedata.normalize("NFC", parts["name"])
    pid = parts["pid"]
    entry = lms_entry(entries, f"moodle/{full}_{pid}", full, path, shown(full), pid)
    if path.is_dir() and not path.is_symlink():
        add_folder(entry.submission, path, unpacker, lateness=True)
    else:
        add_file(entry.submission, path, parts["original"], Lateness(False, modified(path)),
                 unpacker)


@dataclass
class Submitter:
    """One person of a Gradescope submission, as its metadata names them."""

    name: str = ""
    sid: str | None = None
    email: str | None = None


@dataclass
class Exported:
    """One `submission_NNN` of Gradescope's metadata."""

    folder: str
    created_at: str | None = None
    submitters: list[Submitter] = field(default_factory=list)


def gradescope(folder: Path, unpacker: Unpacker) -> tuple[list[Entry], list[str]]:
    """The students of a Gradescope export: each submitter of each listed folder."""
    try:
        exported = read_metadata(folder / GRADESCOPE_METADATA)
    except (UnsafeFile, UnicodeDecodeError) as error:
        reason = "it is not UTF-8 text" if isinstance(error, UnicodeDecodeError) else error
        raise ValueError(f"{GRADESCOPE_METADATA} cannot be read ({reason}): export the "
                         "submissions from Gradescope again") from None
    problems = [f"{shown(path.name)}: not in {GRADESCOPE_METADATA}, not graded"
                for path in sorted(folder.iterdir())
                if path.name != GRADESCOPE_METADATA and path.name not in exported
                and not path.name.startswith(".")]
    entries: dict[str, Entry] = {}
    for item in sorted(exported.values(), key=lambda item: item.created_at or ""):
        for person in item.submitters:
            lms_id = person.sid or person.email
            if not lms_id:
                problems.append(f"{item.folder}: a submitter with no sid nor email "
                                f"({shown(person.name)}), not graded")
                continue
            key = f"gradescope/{lms_id}"
            if key in entries:  # the later submission is the one graded
                problems.append(f"{shown(lms_id)} is a submitter of "
                                f"{entries[key].submission.path.name} and {item.folder}: "
                                f"{item.folder}, handed in later, is graded")
            entries[key] = Entry(key, lms_id, exported_work(folder / item.folder, item,
                                                            person, lms_id, unpacker))
    return list(entries.values()), problems


def exported_work(path: Path, item: Exported, person: Submitter, lms_id: str,
                  unpacker: Unpacker) -> Submission:
    """One submitter's submission of a Gradescope export's folder."""
    submission = Submission("", path, name=shown(person.name or lms_id), lms_id=lms_id)
    if path.is_symlink() or not path.is_dir():
        submission.problems.append(f"{item.folder}/ is missing from the export")
        return submission
    add_folder(submission, path, unpacker, lateness=True, when=item.created_at)
    others = [shown(other.name) for other in item.submitters if other is not person]
    if others:
        submission.problems.append(f"handed in as a group with {', '.join(others)}")
    if not submission.notebooks and not submission.refused:
        submission.problems.append(f"{item.folder}/ holds no notebook")
    return submission


def read_metadata(path: Path) -> dict[str, Exported]:
    """Gradescope's `submission_metadata.yml`, by folder: read within MAX_METADATA_BYTES,
    and only what the grader uses (the folders, their submitters, their time). The file
    is YAML as Ruby writes it: top-level `submission_NNN:` keys, `:submitters:` a list
    of `- :name:`, `:sid:`, `:email:`, `:created_at:` a time; the rest (results, history)
    is skipped by its indent."""
    found: dict[str, Exported] = {}
    current: Exported | None = None
    in_list = False  # inside a submission's :submitters:
    dash: int | None = None  # the indent of its `- ` lines (Ruby writes 2, others 4)
    text = read_submitted(path, MAX_METADATA_BYTES).decode("utf-8")
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        body = line.strip()
        if indent == 0:
            top = GRADESCOPE_FOLDER.fullmatch(body[:-1]) if body.endswith(":") else None
            current = found.setdefault(top[0], Exported(top[0])) if top else None
            in_list, dash = False, None
        elif current is None or not body:
            continue
        elif in_list and body.startswith("- ") and indent == (dash or indent):
            dash = indent
            current.submitters.append(Submitter())
            set_person(current.submitters[-1], body[2:])
        elif indent == 2:
            key, value = key_value(body)
            in_list, dash = key == "submitters", None
            if key == "created_at":
                current.created_at = exported_time(value)
        elif in_list and dash is not None and indent == dash + 2:
            set_person(current.submitters[-1], body)
    return found


def set_person(person: Submitter, body: str) -> None:
    """One `:key: value` line of a submitter."""
    key, value = key_value(body)
    if key == "name":
        person.name = value or ""
    elif key in ("sid", "email"):
        setattr(person, key, value or None)


def key_value(body: str) -> tuple[str, str | None]:
    """`:key: value` as (key, the value's text, None where empty or null)."""
    key, _, value = body.partition(":" if not body.startswith(":") else ": ")
    return key.strip(":").strip(), scalar(value.strip())


ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "e": "\x1b", '"': '"', "\\": "\\",
           "/": "/", " ": " ", "_": "\u00a0", "N": "\u0085", "L": "\u2028", "P": "\u2029"}


def scalar(text: str) -> str | None:
    """A YAML scalar as one line holds it: plain, 'single' or "double" quoted."""
    if text in ("", "~", "null"):
        return None
    if len(text) > 1 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if len(text) > 1 and text[0] == text[-1] == '"':
        return re.sub(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", unescape,
                      text[1:-1])
    return text


def unescape(match: re.Match[str]) -> str:
    """One escape of a double-quoted YAML scalar."""
    code = match[1]
    if len(code) > 1:
        return chr(int(code[1:], 16))
    return ESCAPES.get(code, code)


def exported_time(value: str | None) -> str | None:
    """Gradescope's `2023-12-02 02:52:07.938335000 Z` as ISO 8601 (UTC), None if it is
    not such a time."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(?:\.(\d+))? ?"
                         r"(Z|[+-]\d\d:?\d\d)", value or "")
    if not match:
        return None
    day, time, fraction, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone
    try:
        moment = datetime.fromisoformat(f"{day}T{time}.{(fraction or '0')[:6]:0<6}{zone}")
    except ValueError:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def identified(entries: list[Entry]) -> list[Submission]:
    """The submissions, each with its id and the notes on its name, sorted by id."""
    given = identities([(entry.claim, entry.key) for entry in entries])
    for entry in entries:
        entry.submission.student = given[entry.key].student
        entry.submission.problems[:0] = given[entry.key].notes
    return sorted((entry.submission for entry in entries), key=lambda s: s.student)


def require_notebooks(folder: Path, submissions: list[Submission] | None = None) -> None:
    """LookupError for a folder with nothing to grade, saying what was looked for."""
    found = discover(folder)[0] if submissions is None else submissions
    if not any(s.notebooks or s.refused for s in found):
        raise LookupError(f"{folder} holds no notebooks: looked for STUDENT.ipynb files "
                          "(or .zip), STUDENT/ folders holding them, and Canvas, Moodle and "
                          "Gradescope exports")
