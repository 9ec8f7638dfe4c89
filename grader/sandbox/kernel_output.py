"""What a kernel's processes write to their own stdout and stderr (fd 1 and 2, not cell
outputs), kept away from the grader's terminal and logs.

A cell's `os.write(2, ...)` used to land in `grade`'s own output: escape sequences that
retitle or repaint the instructor's terminal, forged progress lines, in any volume. Each
kernel's fd 1 and 2 are instead a FIFO in its folder (the grader's: the kernel cannot open
it), drained by a thread into at most MAX_KEPT_BYTES; the rest is counted and dropped, so
a kernel that writes without end neither blocks nor grows the grader's memory. The text is
handed out escaped: no control character reaches whoever reads it.
"""

from __future__ import annotations

import os
import select
import threading
from pathlib import Path

MAX_KEPT_BYTES = 64 * 2**10
CHUNK_BYTES = 64 * 2**10
POLL_SECONDS = 0.2
JOIN_SECONDS = 2.0
KEPT_AS_IS = "\n\t"  # every other control character is written out as an escape


def escaped(text: str) -> str:
    """`text` with each control character (ESC, BEL, CR, C1, ...) made visible as repr()
    would write it, newlines and tabs kept."""
    return "".join(c if c in KEPT_AS_IS or c.isprintable() else repr(c)[1:-1] for c in text)


class KernelOutput:
    """The FIFO at `path`, and a thread keeping the first MAX_KEPT_BYTES written into it."""

    def __init__(self, path: Path):
        self.path = path
        os.mkfifo(path, 0o600)
        self.reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        # The grader's own writer: the reader sees no end of input before close(), however
        # often the kernel's processes open and close it.
        self.writer = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        self.kept = bytearray()
        self.dropped = 0
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self.drain, daemon=True)
        self.thread.start()

    def drain(self) -> None:
        while not self.closing.is_set():
            if select.select([self.reader], [], [], POLL_SECONDS)[0]:
                self.read()
        self.read()  # what the FIFO still held when the kernel died
        os.close(self.reader)

    def read(self) -> None:
        try:
            data = os.read(self.reader, CHUNK_BYTES)
        except BlockingIOError:
            return
        room = max(0, MAX_KEPT_BYTES - len(self.kept))
        self.kept += data[:room]
        self.dropped += len(data) - len(data[:room])

    def text(self) -> str:
        """What was kept so far, escaped, and how much was dropped."""
        text = escaped(bytes(self.kept).decode("utf-8", errors="replace"))
        if self.dropped:
            text += f"\n[{self.dropped} more bytes not kept]"
        return text

    def close(self) -> None:
        """Stop keeping (once the kernel is dead) and release the FIFO."""
        if self.closing.is_set():
            return
        self.closing.set()
        os.close(self.writer)
        self.thread.join(JOIN_SECONDS)
