"""What a process imports for its whole life is imported without the cyclic collector, and
frozen out of its reach afterwards; the collector is on again however the imports end."""

from __future__ import annotations

import gc
import sys

import pytest

from grader.imports import import_uncollected


@pytest.fixture
def module_path(tmp_path, monkeypatch):
    """A folder on sys.path for modules written by the test, forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]
    gc.unfreeze()


def test_modules_are_imported_with_the_collector_off_and_then_frozen(module_path):
    (module_path / "lifelong.py").write_text("import gc\nCOLLECTING = gc.isenabled()\n")
    frozen = gc.get_freeze_count()
    import_uncollected("lifelong")
    assert sys.modules["lifelong"].COLLECTING is False
    assert gc.isenabled() and gc.get_freeze_count() > frozen


def test_a_module_already_imported_freezes_nothing(module_path, monkeypatch):
    """Not the freeze count, which falls whenever a frozen object is freed (another
    thread's, say): whether anything was frozen again."""
    (module_path / "early.py").write_text("")
    (module_path / "late.py").write_text("")
    import_uncollected("early")
    freezes = []
    monkeypatch.setattr(gc, "freeze", lambda: freezes.append(True))
    import_uncollected("early")
    assert freezes == []
    import_uncollected("early", "late")  # one not imported yet: frozen once more
    assert freezes == [True]


def test_an_import_that_fails_leaves_the_collector_on(module_path):
    (module_path / "broken.py").write_text("raise ImportError('no such library here')\n")
    with pytest.raises(ImportError, match="no such library"):
        import_uncollected("broken")
    assert gc.isenabled()
