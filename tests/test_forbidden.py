"""From scratch means from scratch: a from-scratch function that calls the library's version
loses that function's marks, however the call is spelled; every correct style keeps them,
and the concise exercises, meant to use the library, forbid nothing."""

from __future__ import annotations

import nbformat
import pytest
from conftest import LENIENT, SOLUTION, code, grade_file, messages, with_functions, write_notebook

from grader.authoring.course import BUNDLED
from grader.authoring.exercise import available
from grader.exercises import linreg, softmax
from grader.grading.forbidden import forbidden_uses
from grader.grading.notebook import MAX_PARSED_CHARS
from grader.grading.source import parse_notebook
from grader.kernel.probing import TORCH_CALLS

RULES = [softmax.FORBIDDEN, linreg.FORBIDDEN]
IMPORTS = "import torch\nimport random\n"


def notebook_of(*cells: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(IMPORTS),
                                           *map(nbformat.v4.new_code_cell, cells)])


def verdicts(*cells: str, observations: dict | None = None) -> dict[str, str]:
    return forbidden_uses(RULES, parse_notebook(notebook_of(*cells)), observations or {})


CORRECT = [
    # softmax, as the seeds and careful students write it
    "def softmax(X):\n    X_exp = torch.exp(X - X.max(dim=1, keepdim=True).values)\n"
    "    return X_exp / X_exp.sum(1, keepdim=True)\n",
    "def softmax(X):\n    return torch.exp(X - torch.logsumexp(X, dim=1, keepdim=True))\n",
    "def softmax(X):\n    e = (X - X.amax(1, keepdim=True)).exp()\n"
    "    return e / e.sum(1)[:, None]\n",
    # cross_entropy, whose notebook also builds nn.CrossEntropyLoss for the concise part
    "from torch import nn\nloss = nn.CrossEntropyLoss(reduction='none')\n",
    "def cross_entropy(y_hat, y):\n    loss = -torch.log(y_hat[range(len(y_hat)), y])\n"
    "    return loss\n",
    "def accuracy(y_hat, y):\n    return (y_hat.argmax(dim=1) == y.reshape(-1)).float().mean()\n",
    # linear regression from scratch, seeds 000 and 001
    "def data_iter(batch_size, features, labels):\n    indices = list(range(len(features)))\n"
    "    random.shuffle(indices)\n    for i in range(0, len(features), batch_size):\n"
    "        j = torch.LongTensor(indices[i:i + batch_size])\n"
    "        yield features.index_select(0, j), labels.index_select(0, j)\n",
    "def squared_loss(y_hat, y):\n    return (y_hat - y.view(y_hat.size())) ** 2 / 2\n",
    "def sgd(params, lr, batch_size):\n    for param in params:\n"
    "        param.data -= lr * param.grad / batch_size\n",
    # the concise part of the same notebook uses the library freely, outside those functions
    "def train_concise(net, lr):\n    trainer = torch.optim.SGD(net.parameters(), lr=lr)\n"
    "    return torch.utils.data.DataLoader, trainer\n",
]


def test_every_correct_style_is_allowed():
    assert verdicts(*CORRECT) == {}


def test_the_solution_notebooks_make_no_forbidden_call():
    for path in [SOLUTION, *sorted(BUNDLED.reference.glob("*.ipynb"))]:
        notebook = nbformat.read(path, as_version=4)
        rules = [exercise.forbidden for exercise in available().values()]
        assert forbidden_uses(rules, parse_notebook(notebook), {}) == {}, path


@pytest.mark.parametrize("cells, function, call", [
    (["def softmax(X):\n    return torch.softmax(X, dim=1)\n"], "softmax", "torch.softmax"),
    (["def softmax(X):\n    return X.softmax(1)\n"], "softmax", "torch.Tensor.softmax"),
    (["import torch.nn.functional as F\n", "def softmax(X):\n    return F.softmax(X, 1)\n"],
     "softmax", "torch.nn.functional.softmax"),
    (["from torch.nn import functional as fn\ndef softmax(X):\n    return fn.softmax(X, 1)\n"],
     "softmax", "torch.nn.functional.softmax"),
    (["from torch import softmax as sm\n", "def softmax(X):\n    return sm(X, 1)\n"],
     "softmax", "torch.softmax"),
    (["def softmax(X):\n    return torch.exp(torch.log_softmax(X, 1))\n"], "softmax",
     "torch.log_softmax"),
    (["def softmax(X):\n    return getattr(torch, 'softmax')(X, 1)\n"], "softmax",
     "torch.softmax"),
    (["def softmax(X):\n    return getattr(X, 'softmax')(1)\n"], "softmax",
     "torch.Tensor.softmax"),
    (["sm = torch.nn.functional.softmax\n", "def softmax(X):\n    return sm(X, 1)\n"],
     "softmax", "torch.nn.functional.softmax"),
    (["softmax = torch.softmax\n"], "softmax", "torch.softmax"),
    (["def helper(X):\n    return torch.nn.Softmax(dim=1)(X)\n",
      "def softmax(X):\n    return helper(X)\n"], "softmax", "torch.nn.Softmax"),
    (["from torch.nn.functional import *\n", "def softmax(X):\n    return softmax(X, 1)\n"],
     "softmax", "torch.nn.functional.softmax"),
    (["%matplotlib inline\nimport torch.nn.functional as F\n",
      "def cross_entropy(y_hat, y):\n    return F.nll_loss(torch.log(y_hat), y, "
      "reduction='none')\n"], "cross_entropy", "torch.nn.functional.nll_loss"),
    (["from torch import nn\n", "def cross_entropy(y_hat, y):\n"
      "    return nn.CrossEntropyLoss(reduction='none')(torch.log(y_hat), y)\n"],
     "cross_entropy", "torch.nn.CrossEntropyLoss"),
    (["def sgd(params, lr, batch_size):\n    torch.optim.SGD(params, lr=lr / batch_size).step()\n"],
     "sgd", "torch.optim.SGD"),
    (["from torch import optim\n", "def sgd(params, lr, batch_size):\n"
      "    optim.SGD(params, lr / batch_size).step()\n"], "sgd", "torch.optim.SGD"),
    (["from torch.utils.data import DataLoader, TensorDataset\n",
      "def data_iter(batch_size, features, labels):\n"
      "    return DataLoader(TensorDataset(features, labels), batch_size, shuffle=True)\n"],
     "data_iter", "torch.utils.data.DataLoader"),
    (["import torch.nn.functional as F\n",
      "def squared_loss(y_hat, y):\n    return F.mse_loss(y_hat, y.reshape(y_hat.shape), "
      "reduction='none') / 2\n"], "squared_loss", "torch.nn.functional.mse_loss"),
])
def test_a_forbidden_call_is_found_however_it_is_spelled(cells, function, call):
    found = verdicts(*cells)
    assert list(found) == [function]
    assert f"`{call}`" in found[function]
    assert softmax.FORBIDDEN.get(function, linreg.FORBIDDEN.get(function)).instead \
        in found[function]


def test_the_last_definition_is_the_one_judged():
    assert verdicts("def softmax(X):\n    return X.softmax(1)\n", CORRECT[0]) == {}
    assert list(verdicts(CORRECT[0], "def softmax(X):\n    return X.softmax(1)\n")) == ["softmax"]


def test_a_call_the_source_hides_is_caught_at_run_time():
    hidden = ('globals()["pick"] = getattr(torch, "soft" + "max")\n',
              "def softmax(X):\n    return pick(X, 1)\n")
    assert verdicts(*hidden) == {}
    seen = {"softmax.values": {"ok": True, "value": {
        "out": None, TORCH_CALLS: ["torch.Tensor.max", "torch.softmax"]}}}
    found = verdicts(*hidden, observations=seen)
    assert "reached `torch.softmax`" in found["softmax"]
    assert "seen at run time" in found["softmax"]


SOFTMAX_OF = "def softmax(X):\n    return {}\n"


@pytest.mark.parametrize("cells, shown", [
    ([SOFTMAX_OF.format("torch.ops.aten._softmax(X, 1, False)")], "`torch.ops.aten._softmax`"),
    ([SOFTMAX_OF.format("torch.ops.aten._log_softmax.default(X, 1, False).exp()")],
     "`torch.ops.aten._log_softmax.default`"),
    ([SOFTMAX_OF.format("torch._C._nn.log_softmax(X, 1).exp()")],
     "`torch._C._nn.log_softmax`"),
    ([SOFTMAX_OF.format("torch._C._VariableFunctions.softmax(X, 1)")],
     "`torch._C._VariableFunctions.softmax`"),
    (["from torch import _VF\n", SOFTMAX_OF.format("_VF.softmax(X, 1)")], "`torch._VF.softmax`"),
    (["import torch.special as sp\n", SOFTMAX_OF.format("sp.log_softmax(X, 1).exp()")],
     "`torch.special.log_softmax`"),
    (["nnf = torch.nn.functional\n", SOFTMAX_OF.format("nnf.softmax(X, 1)")],
     "`torch.nn.functional.softmax`"),
    ([SOFTMAX_OF.format("torch.nn.modules.activation.Softmax(1)(X)")],
     "`torch.nn.modules.activation.Softmax`"),
    ([SOFTMAX_OF.format("X.log_softmax(1).exp()")], "`torch.Tensor.log_softmax`"),
    ([SOFTMAX_OF.format("torch.Tensor.softmax(X, 1)")], "`torch.Tensor.softmax`"),
    ([SOFTMAX_OF.format("__import__('torch.nn.functional').nn.functional.softmax(X, 1)")],
     "`torch.nn.functional.softmax`"),
    (["import importlib\n",
      SOFTMAX_OF.format("importlib.import_module('torch.special').softmax(X, 1)")],
     "`torch.special.softmax`"),
    (["import operator\n", SOFTMAX_OF.format("operator.methodcaller('softmax', 1)(X)")],
     "`torch.Tensor.softmax`"),
    ([SOFTMAX_OF.format("getattr(torch, 'soft' + 'max')(X, 1)")], "(`getattr`)"),
    ([SOFTMAX_OF.format("getattr(X, ''.join(['soft', 'max']))(1)")], "(`getattr`)"),
    ([SOFTMAX_OF.format("getattr(torch.ops.aten, name)(X, 1, False)")], "(`getattr`)"),
    ([SOFTMAX_OF.format("__import__(name).f(X, 1)")], "(`__import__`)"),
    ([SOFTMAX_OF.format("eval('torch.soft' + 'max')(X, 1)")], "(`eval`)"),
    ([SOFTMAX_OF.format("torch.__dict__['softmax'](X, 1)")], "(`__dict__`)"),
    (["def cross_entropy(y_hat, y):\n    return torch._C._nn.nll_loss(y_hat.log(), y)\n"],
     "`torch._C._nn.nll_loss`"),
    (["def squared_loss(y_hat, y):\n    return torch.ops.aten.mse_loss(y_hat, y, 0) / 2\n"],
     "`torch.ops.aten.mse_loss`"),
])
def test_every_route_into_torchs_kernels_is_read(cells, shown):
    """torch.ops, torch._C, torch._VF, torch.special, nn.functional under any alias, Tensor
    methods, modules imported by name and lookups by a name built at run time: the static
    reading sees them all, so switching off the run-time record buys nothing."""
    found = verdicts(*cells)
    assert len(found) == 1 and shown in next(iter(found.values())), found


def test_a_run_time_lookup_also_names_what_the_probes_saw_it_reach():
    cells = ["def cross_entropy(y_hat, y):\n"
             "    return getattr(torch.nn.functional, 'nll' + '_loss')(y_hat.log(), y)\n"]
    seen = {"cross_entropy.values": {"ok": True, "value": {
        TORCH_CALLS: ["torch.nn.functional.nll_loss"]}}}
    found = verdicts(*cells, observations=seen)["cross_entropy"]
    assert "(`getattr`)" in found and "reached `torch.nn.functional.nll_loss`" in found


def test_from_scratch_building_blocks_stay_allowed():
    """exp, sum, max, log, gather, logsumexp, indexing: a from-scratch answer is never
    mistaken for a route into the library's version."""
    assert verdicts(
        SOFTMAX_OF.format("torch.exp(X - torch.logsumexp(X, 1, keepdim=True))"),
        "def cross_entropy(y_hat, y):\n"
        "    return -torch.gather(y_hat, 1, y.view(-1, 1)).squeeze(1).log()\n",
        "def accuracy(y_hat, y):\n    return float(getattr(y_hat, 'argmax')(1).eq(y).sum())\n",
        "def squared_loss(y_hat, y):\n"
        "    return torch.square(y_hat - y.reshape(y_hat.shape)) / 2\n",
    ) == {}


def test_the_run_time_record_can_only_cost_marks():
    """A kernel that reports no torch calls at all (its record switched off) is judged on
    its source alone; a malformed record is ignored."""
    empty = {"softmax.values": {"ok": True, "value": {TORCH_CALLS: []}}}
    assert list(verdicts("def softmax(X):\n    return X.softmax(1)\n",
                         observations=empty)) == ["softmax"]
    malformed = {"softmax.values": {"ok": True, "value": {TORCH_CALLS: [3, None]}},
                 "cross_entropy.values": {"ok": True, "value": [TORCH_CALLS]}}
    assert verdicts(CORRECT[0], observations=malformed) == {}


def test_a_cell_that_does_not_parse_is_passed_over():
    assert verdicts("def softmax(X:\n", CORRECT[0]) == {}


def test_padding_a_cell_past_what_the_grader_reads_buys_no_pass():
    """A cell too long to read could hide any call: every from-scratch function is judged
    as making one, with a message saying why."""
    padded = "def softmax(X):\n    return X.softmax(1)\n" + "#" * (MAX_PARSED_CHARS + 1)
    found = verdicts(padded, *CORRECT[1:])
    assert set(found) == {name for rules in RULES for name in rules}
    assert "characters long" in found["softmax"]
    assert "the grader cannot check which library calls it makes" in found["softmax"]


def test_the_concise_exercises_forbid_nothing():
    concise = {name for name in available() if name.startswith("concise")}
    assert concise and all(not available()[name].forbidden for name in concise)


FORBIDDEN_CELLS = {
    "softmax": code("""
        import torch.nn.functional as F

        def softmax(X):
            return F.softmax(X, dim=1)
        """),
    # A name built at run time: invisible in the source, caught by the probes' record.
    "cross_entropy": code("""
        def cross_entropy(y_hat, y):
            pick = getattr(torch.nn.functional, "nll" + "_loss")
            return pick(torch.log(y_hat), y, reduction="none")
        """),
    "sgd": code("""
        def sgd(params, lr, batch_size):
            torch.optim.SGD(params, lr=lr / batch_size).step()
            for param in params:
                param.grad.zero_()
        """),
}


@pytest.fixture(scope="module")
def forbidden_result(tmp_path_factory):
    path = tmp_path_factory.mktemp("forbidden") / "forbidden.ipynb"
    return grade_file(write_notebook(with_functions(FORBIDDEN_CELLS), path), LENIENT)


@pytest.mark.parametrize("function, call", [
    ("softmax", "torch.nn.functional.softmax"), ("cross_entropy", "torch.nn.functional.nll_loss"),
    ("sgd", "torch.optim.SGD")])
def test_a_forbidden_call_costs_that_functions_marks_and_names_the_call(
        forbidden_result, function, call):
    tests = [test for test in forbidden_result.tests if test.exercise == function]
    assert tests and all(test.points == 0 for test in tests)
    assert all(f"`{call}`" in test.message for test in tests), messages(forbidden_result)


def test_the_other_functions_keep_their_marks(forbidden_result):
    others = [test for test in forbidden_result.tests
              if test.exercise in ("accuracy", "squared_loss", "data_iter")]
    assert others and all(test.passed for test in others)
