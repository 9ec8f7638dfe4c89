"""Kernel side of train: the student's loop on an nn.Linear(1, 1), an optimizer and a loss
the grader builds, with hooks that count what the loop did.

A forward hook records, at every pass, whether the input was the validation set and whether
autograd was recording; a hook on the weight sees each backward pass's own gradient, and the
optimizer, at every step, compares .grad with the gradients of the passes since the last
step: gradients carried over from earlier epochs, or cleared before the step, are counted.
"""

from __future__ import annotations

import torch
from torch import nn, optim

from grader.kernel.probing import Probe

OPTIMIZERS = {"sgd": optim.SGD, "adam": optim.Adam}
LOSSES = {"mse": nn.MSELoss, "l1": nn.L1Loss}


def watched_run(probe: Probe, prefix: str) -> dict:
    """train(...) on the split under `prefix`, from the grader's initial weight and bias."""
    inputs = {key.split(".", 2)[2]: value for key, value in probe.inputs.items()
              if key.startswith(f"train.{prefix}.")}
    model = nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(float(inputs["w0"]))
        model.bias.fill_(float(inputs["b0"]))
    X_val = inputs["X_val"].clone()
    passes = []

    def seen(module, args, out) -> None:
        x = args[0] if args else None
        on_val = isinstance(x, torch.Tensor) and x.shape == X_val.shape \
            and torch.equal(x, X_val)
        passes.append([on_val, torch.is_grad_enabled()])

    model.register_forward_hook(seen)
    fresh: list[torch.Tensor] = []
    model.weight.register_hook(lambda grad: fresh.append(grad.detach().clone()))
    counts = {"steps": 0, "carried": 0, "cleared": 0, "extra_backward": 0}
    optimizer = OPTIMIZERS[inputs["optimizer"]](model.parameters(), lr=float(inputs["lr"]))

    def count_step(opt, args, kwargs) -> None:
        counts["steps"] += 1
        grad = model.weight.grad
        if fresh:
            if grad is None or not bool(grad.any()):
                counts["cleared"] += 1
            elif not torch.allclose(grad, torch.stack(fresh).sum(dim=0), rtol=1e-5,
                                    atol=1e-7):
                counts["carried"] += 1
            counts["extra_backward"] += len(fresh) > 1
        fresh.clear()

    optimizer.register_step_pre_hook(count_step)
    returned = probe.student("train")(int(inputs["epochs"]), optimizer, model,
                                      LOSSES[inputs["loss"]](), inputs["X_train"].clone(),
                                      inputs["y_train"].clone(), X_val, inputs["y_val"].clone())
    return {"returned": returned, "epochs": int(inputs["epochs"]), **counts,
            "val_passes": sum(on_val for on_val, _ in passes),
            "val_recorded": sum(on_val and recorded for on_val, recorded in passes),
            "passes": len(passes),
            "parameters": [model.weight.detach().clone(), model.bias.detach().clone()]}


PROBES = {
    "train.seed_run": lambda probe: watched_run(probe, "seed"),
    "train.other_run": lambda probe: watched_run(probe, "other"),
}
