"""Student ids from file and folder names: ASCII, unique, and never taken.

An id is what the grader names a student by: the folder of their reports, their row in
grades.csv, their login in gradebook.csv. It must be safe as a folder name and a CSV cell
whatever the name held, and one student's file name must never yield another's id.

Ids are ASCII: letters of every script are transliterated (anyascii), so José Núñez reads
as Jose_Nunez and 李雷 as Li_Lei, and any tool, disk or spreadsheet takes them. The name as
people read it, in its own script, is kept beside the id (Submission.name). A name that is
already a clean id is its own id. Any other name (a space, a '!', a letter outside ASCII, a
twin of another entry) gets its clean form plus '~' and a hash of the entry's own name:
'~' never occurs in a clean id, so such an id cannot equal an exact one (José and Jose
stay apart), and it depends on nothing but that entry, so it stays the same whatever else
is handed in.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from anyascii import anyascii

KEPT_PUNCTUATION = "._-"
MAX_ID_BYTES = 100  # a folder name may be 255 bytes; this leaves room for the suffix
SHORT_HASH = 8
APART = "~"
NAMES_ALIKE = "Names alike:"  # starts every note about a name like another entry's
MAX_SHOWN = 80
# The class files an output folder holds beside the students' folders (grader/outputs/class_files.py
# OUTPUTS, kept light here; tests/test_imports.py checks they agree): an id equal to one
# would make that file a folder and stop every later run from writing it.
RESERVED = frozenset({"grades.csv", "gradebook.csv", "similarity.csv", "summary.html",
                      "shard.json", "overrides.csv", "gradebook-moodle"})


@dataclass(frozen=True)
class Identity:
    """The id an entry is graded as, and what the instructor should know about its name."""

    student: str
    notes: tuple[str, ...] = ()


def student_id(name: str) -> str:
    """The clean form of a name: its letters transliterated to ASCII, ASCII letters and
    digits, '.', '_' and '-' kept; invisible format characters (bidi overrides, zero
    widths) dropped; any other run one '_'; no leading or trailing '.', '_' or '-' (no
    hidden folder, '..' or '-flag', and no '=', '+', '@' at all for a spreadsheet to run);
    at most MAX_ID_BYTES."""
    kept: list[str] = []
    for char in unicodedata.normalize("NFC", name):
        if unicodedata.category(char) == "Cf":
            continue
        for latin in transliterated(char):
            if latin.isascii() and (latin.isalnum() or latin in KEPT_PUNCTUATION):
                kept.append(latin)
            elif kept[-1:] != ["_"]:
                kept.append("_")
    cut = "".join(kept)[:MAX_ID_BYTES].strip(KEPT_PUNCTUATION)
    return cut or "unnamed"


def transliterated(char: str) -> str:
    """One character in ASCII; a syllable of a script without case (李 Li, 민 Min) apart
    from the next, as its readers would write it in Latin letters: Li_Lei, not LiLei."""
    if char.isascii():
        return char
    latin = anyascii(char)
    if len(latin) > 1 and latin[0].isupper() and not (char.isupper() or char.islower()):
        return f" {latin} "
    return latin


def is_clean(name: str) -> bool:
    """Whether a name is its own id: cleaning it changes nothing but its normal form, and
    it names none of the class files (in any case, for a case-blind disk)."""
    return (student_id(name) == unicodedata.normalize("NFC", name)
            and look_alike(name) not in RESERVED)


def apart(entry: str, base: str, full: bool = False) -> str:
    """The id of an entry that is not its name's sole exact claimant: its clean form, '~'
    and a hash of its own entry name (the bytes the file system holds), short unless two
    short ones agree."""
    digest = hashlib.sha256(os.fsencode(entry)).hexdigest()
    return f"{base}{APART}{digest if full else digest[:SHORT_HASH]}"


def look_alike(student: str) -> str:
    """What people read an id as: compatibility forms and case folded (ｖｉｃ, Vic, vic)."""
    return unicodedata.normalize("NFKC", student).casefold()


def shown(name: str) -> str:
    """A name as a message prints it: characters that are not printable (escapes, bidi
    overrides, undecodable bytes) spelled as escapes, and bounded."""
    text = "".join(char if char.isprintable() else ascii(char)[1:-1] for char in name)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "…"


def identities(entries: Sequence[tuple[str, str]]) -> dict[str, Identity]:
    """The identity of each (name, entry name) of one folder, by entry name: the name is a
    file's stem or a folder's name, the entry name what the folder lists (each distinct).

    Nothing here depends on order or on the other entries but through exact claims: an
    exact name is its own id unless another entry is just as entitled to it (`vic.ipynb`
    beside a folder `vic/`), and then neither has it; every other entry is kept apart by a
    hash of its own entry name, so adding or removing files changes no one else's id."""
    bases = {entry: student_id(name) for name, entry in entries}
    exact = {entry for name, entry in entries if is_clean(name)}
    claims = Counter(bases[entry] for entry in exact)
    ids = {entry: base if entry in exact and claims[base] == 1 else apart(entry, base)
           for entry, base in bases.items()}
    twins = Counter(ids.values())  # short hashes that agree: a student can search for one
    readings = Counter(look_alike(base) for base in bases.values())
    found = {}
    for entry, base in bases.items():
        student = ids[entry] if twins[ids[entry]] == 1 else apart(entry, base, full=True)
        found[entry] = Identity(student, note(entry, base, student,
                                              readings[look_alike(base)] > 1))
    return found


def note(entry: str, base: str, student: str, alike: bool) -> tuple[str, ...]:
    """What the instructor (and the student, in their report) reads about this name: only
    its own entry is named, since a report is its student's alone."""
    if alike:
        kept = "is kept apart" if APART in student else "keeps its exact name"
        return (f"{NAMES_ALIKE} {shown(entry)} reads as the same student as another "
                f"submission ({base}); it {kept} and is graded as {student}. Check whose "
                "work each is.",)
    if APART in student:
        return (f"{shown(entry)} is graded as {student}: a name that is not already an id "
                "(ASCII letters, digits, '.', '_', '-') gets one with a suffix from its own "
                "name, so it never takes another student's",)
    return ()
