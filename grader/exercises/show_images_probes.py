"""Kernel side of show_images: call it on the grader's images and titles with matplotlib's
Agg backend, and describe the figure it drew as plain data: its size, and each axis's grid
cell, title, images and whether its axes are hidden. No picture is compared.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice
from types import ModuleType

import numpy as np
import torch

from grader.kernel.probing import Probe


@contextmanager
def agg_backend() -> Iterator[ModuleType]:
    """Agg while the student's function draws: plt.show() is then a no-op that leaves the
    figure open, and nothing is displayed. The backend in use before is restored after (a
    notebook's inline one, in the self-check). Yields pyplot, imported only here: the
    grader imports every exercise's probes as it starts, and pyplot cost it 0.2 s."""
    from matplotlib import pyplot as plt

    previous = plt.get_backend()
    if previous.lower() != "agg":
        # Loaded first as pyplot itself would load it: the inline backend sets up its
        # display hooks only when loaded while it is the backend named.
        plt.switch_backend(previous)
    plt.switch_backend("Agg")
    try:
        yield plt
    finally:
        plt.close("all")
        if previous.lower() != "agg":
            plt.switch_backend(previous)


def image_data(image) -> torch.Tensor:
    array = image.get_array()
    array = array.filled(0) if hasattr(array, "filled") else array
    return torch.as_tensor(array).clone()


def axis_description(ax) -> dict:
    spec = ax.get_subplotspec()
    return {
        "cell": [spec.rowspan.start, spec.colspan.start] if spec is not None else None,
        "grid": list(spec.get_gridspec().get_geometry()) if spec is not None else None,
        "title": ax.get_title(),
        "images": [image_data(image) for image in ax.get_images()],
        "axis_on": bool(ax.axison),
        "axes_visible": [bool(ax.xaxis.get_visible()), bool(ax.yaxis.get_visible())],
        "ticks": [len(ax.get_xticks()), len(ax.get_yticks())],
    }


MAX_RETURNED = 100  # a student's return value is read this far, no further
SEQUENCES = (list, tuple, np.ndarray, np.flatiter)


def returned_axes(value, figure) -> dict:
    """What show_images returned: its type, its shape for an array, and for each item the
    index of the figure's axis it is (None for anything else)."""
    index = {id(ax): i for i, ax in enumerate(figure.axes)}
    shape = [int(n) for n in value.shape] if isinstance(value, np.ndarray) else None
    if not isinstance(value, SEQUENCES):
        return {"type": type(value).__name__, "shape": shape, "axes": None}
    items = value.flat if isinstance(value, np.ndarray) else value
    return {"type": type(value).__name__, "shape": shape,
            "axes": [index.get(id(item)) for item in islice(items, MAX_RETURNED)]}


def drawn(probe: Probe, case: str, images) -> dict:
    """show_images(images, rows, cols, titles, scale) as the inputs of `case` give them."""
    rows, cols = (int(v) for v in probe.inputs[f"show_images.{case}_layout"])
    titles = probe.inputs.get(f"show_images.{case}_titles")
    scale = float(probe.inputs[f"show_images.{case}_scale"])
    with agg_backend() as plt:
        before = set(plt.get_fignums())
        value = probe.student("show_images")(images, rows, cols, titles, scale)
        figures = [plt.figure(number) for number in plt.get_fignums() if number not in before]
        if len(figures) != 1:
            return {"figures": len(figures)}
        figure = figures[0]
        return {"figures": 1, "size": [float(v) for v in figure.get_size_inches()],
                "axes": [axis_description(ax) for ax in figure.axes],
                "returned": returned_axes(value, figure)}


def grid(probe: Probe) -> dict:
    return drawn(probe, "grid", probe.inputs["show_images.grid_images"].clone())


def partial_numpy(probe: Probe) -> dict:
    """Fewer images than cells, as a list of NumPy arrays, without titles."""
    images = [image.numpy().copy() for image in probe.inputs["show_images.partial_images"]]
    return drawn(probe, "partial", images)


def single_row(probe: Probe) -> dict:
    return drawn(probe, "row", probe.inputs["show_images.row_images"].clone())


PROBES = {
    "show_images.grid": grid,
    "show_images.partial": partial_numpy,
    "show_images.row": single_row,
}
