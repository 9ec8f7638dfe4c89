"""Grader side of show_images (seed 000): the figure is graded, not a picture. The kernel
describes what the student's function drew (grid cells, titles, image data, hidden axes,
size) and these checks compare it with the reference's drawing of the same images.
"""

from __future__ import annotations

import torch

from grader.authoring.datasets import FASHION_MNIST
from grader.authoring.exercise import Declaration, Step
from grader.exercises import show_images_probes as probes
from grader.grading.checks import Context, Failed, Registry
from grader.grading.expect import describe
from grader.kernel.data import LABELS

CHECKS = Registry()
HINTS = {"show_images.": [
    ("'NoneType' object is not subscriptable", "titles may be None: set a title only "
                                               "`if titles:`"),
    ("has no attribute 'flatten'", "plt.subplots returns a single Axes for a 1 × 1 grid and an "
                                   "array otherwise: flatten the array with axes.flatten()"),
    ("'Axes' object is not subscriptable", "plt.subplots(1, n) returns a 1-D array of axes: "
                                           "flatten the grid (axes.flatten()) and take "
                                           "axes[i]"),
    ("out of bounds", "draw only as many images as there are: zip(axes, imgs)"),
    ("index out of range", "draw only as many images as there are: zip(axes, imgs)"),
]}
SCALES = (1.2, 1.5, 1.8, 2.0)


def make_inputs(generator: torch.Generator, options, notebook: dict) -> dict:
    """A full grid with Fashion-MNIST label titles, a grid with empty cells and no titles,
    and a single row; sizes, scales and images drawn."""
    def draw(low: int, high: int) -> int:
        return int(torch.randint(low, high + 1, (1,), generator=generator))

    def scale() -> float:
        return SCALES[draw(0, len(SCALES) - 1)]

    rows, cols = 2, draw(4, 6)
    partial_cols = draw(3, 4)
    row_cols = draw(3, 5)
    labels = torch.randint(0, len(LABELS), (rows * cols + row_cols,), generator=generator)
    titles = [LABELS[int(label)] for label in labels]
    return {
        "show_images.grid_images": torch.rand(rows * cols, 28, 28, generator=generator),
        "show_images.grid_layout": [rows, cols],
        "show_images.grid_titles": titles[: rows * cols],
        "show_images.grid_scale": scale(),
        "show_images.partial_images": torch.rand(2 * partial_cols - draw(1, 2), 28, 28,
                                                 generator=generator),
        "show_images.partial_layout": [2, partial_cols],
        "show_images.partial_scale": scale(),
        "show_images.row_images": torch.rand(row_cols, 28, 28, generator=generator),
        "show_images.row_layout": [1, row_cols],
        "show_images.row_titles": titles[rows * cols:],
        "show_images.row_scale": scale(),
    }


def figure(ctx: Context, case: str, side: str = "got") -> dict:
    """The one figure drawn, the reference's (side "want") or the student's, checked."""
    observed = ctx.want(f"show_images.{case}") if side == "want" \
        else ctx.got(f"show_images.{case}")
    count = observed["figures"]
    if count == 0:
        raise Failed("show_images drew no figure: make one with plt.subplots(num_rows, "
                     "num_cols, figsize=...)", "1 figure", "0")
    if count != 1:
        raise Failed(f"show_images opened {count} figures: one, made by plt.subplots, holds "
                     "every image (a plt.figure() before plt.subplots opens a second)",
                     "1 figure", f"{count}")
    return observed


def by_cell(observed: dict) -> dict[tuple[int, int], dict]:
    return {tuple(ax["cell"]): ax for ax in observed["axes"] if ax["cell"] is not None}


def where(cell: tuple[int, int]) -> str:
    return f"row {cell[0]}, column {cell[1]}"


def expect_grid(ctx: Context, case: str) -> dict[tuple[int, int], dict]:
    """One axis per cell of the reference's grid, laid out as plt.subplots lays them."""
    got, want = figure(ctx, case), figure(ctx, case, "want")
    rows, cols = (int(v) for v in ctx.inputs[f"show_images.{case}_layout"])
    cells = by_cell(got)
    if len(got["axes"]) != len(want["axes"]) or set(cells) != set(by_cell(want)):
        raise Failed(f"show_images drew {len(got['axes'])} axes for a {rows} × {cols} grid: "
                     "make them with plt.subplots(num_rows, num_cols), one per cell",
                     f"{len(want['axes'])} axes in a {rows} × {cols} grid",
                     f"{len(got['axes'])} axes at {sorted(cells)}")
    return cells


def same_image(got: list, want: list) -> bool:
    return len(got) == len(want) and all(
        isinstance(g, torch.Tensor) and g.shape == w.shape
        and torch.allclose(g.double(), w.double(), rtol=1e-5, atol=1e-6)
        for g, w in zip(got, want, strict=True))


def expect_images(ctx: Context, case: str) -> None:
    """Each cell shows the image the reference's shows there, and nothing more."""
    cells = expect_grid(ctx, case)
    want = by_cell(figure(ctx, case, "want"))
    rows, cols = (int(v) for v in ctx.inputs[f"show_images.{case}_layout"])
    images = ctx.inputs[f"show_images.{case}_images"]
    if rows > 1 and len(images) == rows * cols and all(
            same_image(cells[r, c]["images"], [images[c * rows + r]])
            for r in range(rows) for c in range(cols)):
        raise Failed("the images fill the grid column by column: take the axes row by row, "
                     "axes.flatten(), and image i goes to axis i", "row by row",
                     "column by column")
    for cell in sorted(want):
        got_images, want_images = cells[cell]["images"], want[cell]["images"]
        if same_image(got_images, want_images):
            continue
        if want_images and not got_images:
            raise Failed(f"the axis at {where(cell)} shows no image: draw image i with "
                         "axes[i].imshow(img)", "1 image", "0")
        if len(got_images) != len(want_images):
            raise Failed(f"the axis at {where(cell)} shows {len(got_images)} images, the "
                         f"reference's {len(want_images)}: one image per axis",
                         f"{len(want_images)}", f"{len(got_images)}")
        raise Failed(f"the axis at {where(cell)} does not show the image that belongs there "
                     "(image i on axis i, row by row, as given)",
                     describe(want_images[0]), describe(got_images[0]))


@CHECKS.add("show_images", points=1, reads=("show_images.grid",))
def draws_a_grid_of_axes(ctx: Context) -> str:
    cells = expect_grid(ctx, "grid")
    rows, cols = (int(v) for v in ctx.inputs["show_images.grid_layout"])
    return f"One figure of {len(cells)} axes in a {rows} × {cols} grid."


@CHECKS.add("show_images", points=1, reads=("show_images.grid",))
def draws_each_image_in_order(ctx: Context) -> str:
    expect_images(ctx, "grid")
    return "Image i is drawn on axis i, row by row."


@CHECKS.add("show_images", points=1, reads=("show_images.grid",))
def titles_each_image(ctx: Context) -> str:
    cells = expect_grid(ctx, "grid")
    for cell, ax in sorted(by_cell(figure(ctx, "grid", "want")).items()):
        title = cells[cell]["title"]
        if title != ax["title"]:
            raise Failed(f"the image at {where(cell)} has the title {title!r}, not "
                         f"{ax['title']!r}: ax.set_title(titles[i]) on the axis of image i",
                         repr(ax["title"]), repr(title))
    return "Every image has its own title."


def hidden_axes(ctx: Context, ax: dict) -> bool:
    if not ax["axis_on"] or not any(ax["axes_visible"]):
        return True
    if not any(ax["ticks"]):
        ctx.accept("ticks removed instead of the axes hidden")
        return True
    return False


@CHECKS.add("show_images", points=1, reads=("show_images.grid",))
def hides_the_axes(ctx: Context) -> str:
    cells = expect_grid(ctx, "grid")
    shown = [cell for cell, ax in sorted(cells.items()) if ax["images"]
             and not hidden_axes(ctx, ax)]
    if shown:
        raise Failed(f"{len(shown)} of the images keep their axes (the first at "
                     f"{where(shown[0])}): hide them, ax.axes.get_xaxis().set_visible(False) "
                     "and likewise for y, or ax.axis('off')", "hidden axes", "visible axes")
    return "The axes of every image are hidden."


@CHECKS.add("show_images", points=1, reads=("show_images.grid",))
def sizes_the_figure_by_scale(ctx: Context) -> str:
    got, want = figure(ctx, "grid")["size"], figure(ctx, "grid", "want")["size"]
    if all(abs(g - w) <= 1e-6 for g, w in zip(got, want, strict=True)):
        return f"{got[0]:g} × {got[1]:g} inches: (num_cols × scale, num_rows × scale)."
    if all(abs(g - w) <= 1e-6 for g, w in zip(got, want[::-1], strict=True)):
        raise Failed("the figure's width and height are swapped: figsize is (width, height) = "
                     "(num_cols * scale, num_rows * scale)", f"{want[0]:g} × {want[1]:g}",
                     f"{got[0]:g} × {got[1]:g}")
    raise Failed(f"the figure is {got[0]:g} × {got[1]:g} inches: pass figsize=(num_cols * "
                 "scale, num_rows * scale) to plt.subplots", f"{want[0]:g} × {want[1]:g}",
                 f"{got[0]:g} × {got[1]:g}")


def expect_flattened(returned: dict, rows: int, cols: int) -> None:
    """A 1-D array (or list) of the figure's axes: a 2-D grid or anything else fails."""
    if returned["type"] == "NoneType":
        raise Failed("show_images returned None: the docstring asks for the axes, flattened: "
                     "end with return axes after axes = axes.flatten()", "the axes, flattened",
                     "None")
    shape = returned["shape"]
    if shape is not None and len(shape) > 1:
        raise Failed(f"show_images returned the axes as a {' × '.join(map(str, shape))} "
                     "grid: the docstring asks for them flattened, return axes.flatten()",
                     f"shape ({rows * cols},)", f"shape {tuple(shape)}")
    axes = returned["axes"]
    if axes is None or None in axes or sorted(axes) != list(range(rows * cols)):
        raise Failed(f"show_images returned a {returned['type']}, not the {rows * cols} axes "
                     "of its figure: return them flattened, axes.flatten()",
                     f"the {rows * cols} axes", returned["type"])


# The order of the axes is draws_each_image_in_order's: this one asks for the documented
# return value, each axis of the figure once, in one dimension.
@CHECKS.add("show_images", points=1, requires=("show_images.draws_a_grid_of_axes",),
            reads=("show_images.grid",))
def returns_the_axes_flattened(ctx: Context) -> str:
    returned = figure(ctx, "grid").get("returned")
    if not isinstance(returned, dict):
        raise Failed("the grader could not see what show_images returned", "a report",
                     describe(returned))
    rows, cols = (int(v) for v in ctx.inputs["show_images.grid_layout"])
    expect_flattened(returned, rows, cols)
    if returned["type"] != "ndarray":
        ctx.accept(f"a {returned['type']} of the axes instead of the array axes.flatten()")
    return f"The {rows * cols} axes are returned flattened."


@CHECKS.add("show_images", points=1, hidden=True, reads=("show_images.partial",))
def handles_empty_cells_and_no_titles(ctx: Context) -> str:
    """Fewer NumPy images than cells and titles=None draw as the reference draws them."""
    expect_images(ctx, "partial")
    cells = expect_grid(ctx, "partial")
    titled = [cell for cell, ax in sorted(cells.items()) if ax["title"]]
    if titled:
        raise Failed(f"with titles=None the axis at {where(titled[0])} has a title", "''",
                     repr(cells[titled[0]]["title"]))
    return "Empty cells stay empty, NumPy images are drawn, and no title is set."


@CHECKS.add("show_images", points=1, hidden=True, reads=("show_images.row",))
def handles_a_single_row(ctx: Context) -> str:
    """A grid of one row draws as the reference draws it."""
    expect_images(ctx, "row")
    return "A single row of images is drawn in order."


EXERCISE = Declaration(checks=CHECKS, probes=probes, steps=(Step(probes.PROBES),),
                       make_inputs=make_inputs, data=(FASHION_MNIST,), hints=HINTS)
