"""Calling student functions on grader inputs and recording what they return.

This module runs in two places: inside the student's kernel (on the student's functions)
and in the grader (on the reference functions), so both sides produce observations by the
same code. It only records: every verdict is reached later, in the grader.

Nothing crosses the boundary through files. The inputs arrive in the source of the
grader's cell; each observation goes back as it is made, as a display message of its own
MIME type on the kernel's channel, which the grader reads within bounds of size and
parses as plain data only (grader/sandbox/observations.py). It holds tensors, numbers, strings,
lists and dicts only, so it loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import base64
import importlib
import io
import random
import signal
import sys
import threading
import traceback
import types
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

MAX_ELEMENTS = 2_000_000
MAX_ITEMS = 2_000
MAX_TEXT = 2_000
GRADER_DIR = str(Path(__file__).resolve().parent.parent)
OBSERVATION_MIME = "application/vnd.dl-grader.observation+base64"
Publish = Callable[[str, dict], None]
PROBE_SEEDS = "probe_seeds"  # the inputs' table of one seed per probe key
DEVICE = "device"  # the inputs' entry naming where long steps run
COURSE_PACKAGE = "dl_course"  # a course's own exercise modules, by this package name
SEND_SECONDS = 5.0  # the longest a probe waits for its observation to leave the kernel
TORCH_CALLS = "torch_calls"  # a probe's field: the torch functions the student's call reached


class ProbeTimeout(BaseException):
    """A BaseException, so a student's ``except Exception`` cannot swallow it."""


class MissingFunction(Exception):
    """The notebook did not define the function the grader asked for."""


def plain(value: Any, depth: int = 0) -> Any:
    """Copy a returned value into plain data; anything else becomes a type marker."""
    if isinstance(value, torch.Tensor):
        if value.numel() > MAX_ELEMENTS:
            return {"__kind__": "too_large", "shape": list(value.shape)}
        return value.detach().to("cpu").as_subclass(torch.Tensor).clone().contiguous()
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):  # NumPy's float64 is a float, but unloadable as one
        return int.__int__(value) if isinstance(value, int) else float.__float__(value)
    if isinstance(value, str):
        return value[:MAX_TEXT]
    if isinstance(value, list | tuple) and depth < 4:
        if len(value) > MAX_ITEMS:
            return {"__kind__": "too_long", "length": len(value)}
        return [plain(item, depth + 1) for item in value]
    if isinstance(value, dict) and depth < 4:
        return {str(key)[:100]: plain(item, depth + 1) for key, item in list(value.items())[:100]}
    return {"__kind__": "object", "type": f"{type(value).__module__}.{type(value).__qualname__}"}


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ProbeTimeout after `seconds`; a no-op off the main thread, where signals can't go."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise ProbeTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def seed_everything(seed: int) -> None:
    """Student code may draw from Python's or torch's generator: pin both."""
    random.seed(seed)
    torch.manual_seed(seed)


class Probe:
    """One run of probes: the functions to call, the inputs, and what was observed."""

    def __init__(
        self,
        functions: dict[str, Any],
        inputs: dict[str, Any],
        publish: Publish | None = None,
        timeout: float = 30.0,
    ):
        self.functions = functions
        self.inputs = inputs
        self.publish = publish
        self.timeout = timeout
        self.observations: dict[str, Any] = {}
        self.state: dict[str, Any] = {}

    def student(self, name: str) -> Callable:
        function = self.functions.get(name)
        if function is None:
            raise MissingFunction(f"the notebook defines no function named {name!r}")
        if not callable(function):
            raise MissingFunction(f"{name!r} is a {type(function).__name__}, not a function")
        return function

    def record(self, key: str, probe: Callable[[Probe], Any], seed: int = 0) -> None:
        """Run one probe with a time limit, keep its result or its error, and send it at
        once, so a kernel that dies later loses nothing observed."""
        seed_everything(seed)
        try:
            with time_limit(self.timeout):
                value = probe(self)
            entry = {"ok": True, "value": plain(value)}
        except ProbeTimeout:
            entry = failure("Timeout", f"did not return within {self.timeout:g} s")
        except MissingFunction as error:
            entry = failure("Missing", str(error))
        except BaseException as error:  # noqa: BLE001 - student code may raise anything
            entry = failure(type(error).__name__, str(error), student_traceback(error))
        self.observations[key] = entry
        if self.publish is not None:
            self.publish(key, entry)


def student_traceback(error: BaseException) -> str:
    """The traceback without the grader's own frames: the student's code is what to fix."""
    summary = traceback.TracebackException.from_exception(error)
    summary.stack = traceback.StackSummary.from_list(
        [frame for frame in summary.stack if not frame.filename.startswith(GRADER_DIR)])
    return "".join(summary.format())


def failure(error: str, message: str, trace: str = "") -> dict[str, Any]:
    return {"ok": False, "error": error, "message": message[:MAX_TEXT], "traceback": trace[-4000:]}


def to_bytes(value: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def encode(value: Any) -> str:
    """Plain data as text for a cell's source or a display message."""
    return base64.b64encode(to_bytes(value)).decode("ascii")


def decode_inputs(text: str) -> dict[str, Any]:
    """The grader's inputs, read as plain data only."""
    return torch.load(io.BytesIO(base64.b64decode(text)), map_location="cpu",
                      weights_only=True)


def publish_observation(key: str, entry: dict) -> None:
    """Send one observation to the grader over the kernel's channel, and wait until the
    kernel's I/O thread has sent it: a probe that kills the kernel next (os._exit, a
    segfault) must not take the observation before it along."""
    from IPython import get_ipython
    from IPython.display import publish_display_data

    publish_display_data({OBSERVATION_MIME: encode({key: entry})})
    io_thread = getattr(getattr(get_ipython(), "kernel", None), "iopub_thread", None)
    if io_thread is not None:
        sent = threading.Event()
        io_thread.schedule(sent.set)  # runs after the send queued before it
        sent.wait(SEND_SECONDS)


def open_probe(functions: dict[str, Any], inputs: str, timeout: float) -> Probe:
    """The kernel's entry point: the grader's inputs, from the cell that calls it."""
    return Probe(functions, decode_inputs(inputs), publish_observation, timeout)


def run_table(probe: Probe, module: str, table: str, keys: list[str] | None = None,
              timeout: float | None = None, late: str | None = None) -> None:
    """Record the probes of `module.table` (all, or `keys`), each under its own seed;
    `late` brings the inputs this step alone receives (encoded)."""
    if late:
        probe.inputs.update(decode_inputs(late))
    probes = getattr(importlib.import_module(module), table)
    previous, probe.timeout = probe.timeout, timeout or probe.timeout
    try:
        for key, function in probes.items():
            if keys is None or key in keys:
                probe.record(key, function, seed=int(probe.inputs[PROBE_SEEDS][key]))
    finally:
        probe.timeout = previous


def course_modules(folder: str) -> None:
    """Make a course's own modules importable as dl_course.<name>: in the grader and in the
    kernel, whose sandbox shows the folder read-only. Another folder replaces the last."""
    package = sys.modules.get(COURSE_PACKAGE)
    if package is not None and list(package.__path__) == [folder]:
        return
    for name in [n for n in sys.modules if n.split(".")[0] == COURSE_PACKAGE]:
        del sys.modules[name]
    package = types.ModuleType(COURSE_PACKAGE, "A course's own exercise modules.")
    package.__path__ = [folder]
    sys.modules[COURSE_PACKAGE] = package
    importlib.invalidate_caches()


class TorchCalls(TorchFunctionMode):
    """Records the torch functions a call reaches at its own level (what they call in turn
    is not seen): `torch.softmax`, `torch.Tensor.exp`, `torch.nn.functional.nll_loss`. The
    student can switch it off: grader/grading/forbidden.py reads it as evidence against only."""

    def __init__(self):
        super().__init__()
        self.names: dict[str, None] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if len(self.names) < MAX_ITEMS:
            self.names.setdefault(torch_function_name(func))
        return func(*args, **(kwargs or {}))


def torch_function_name(func: Any) -> str:
    """A torch function by the name a notebook calls it: `torch.softmax`, not
    `torch._VariableFunctionsClass.softmax`."""
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", repr(func))
    module = getattr(func, "__module__", None) or ""
    for prefix, public in (("_VariableFunctionsClass.", "torch."), ("TensorBase.", "torch.Tensor."),
                           ("Tensor.", "torch.Tensor.")):
        if name.startswith(prefix):
            return public + name.removeprefix(prefix)
    if module.startswith("torch._C._"):  # torch._C._special.special_softmax
        namespace = module.removeprefix("torch._C._")
        return f"torch.{namespace}.{name.removeprefix(namespace + '_')}"
    return f"{module}.{name}" if module else name


def recording_torch_calls(function: Callable, *args: Any) -> tuple[Any, list[str]]:
    """`function(*args)`, and the torch functions it reached, in the order first reached."""
    with TorchCalls() as record:
        value = function(*args)
    return value, list(record.names)


def function_of(key: str) -> str:
    """The student function a probe key belongs to: 'softmax.large' -> 'softmax'."""
    return key.split(".")[0]


def functions_of(keys: Iterable[str]) -> tuple[str, ...]:
    """The student functions some probe keys belong to, each once, in order."""
    return tuple(dict.fromkeys(function_of(key) for key in keys))
