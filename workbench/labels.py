"""Label schemas as data, and the conversion of a label map into training targets.

A label map holds one integer per voxel: 0 is background, the other values are the
schema's labels. Training uses one of two targets (DESIGN §2):

* **softmax mode** — a *class map*: the label values renumbered to consecutive class
  indices ``0..C`` (0 background, class ``i`` is the ``i``-th label of the schema in
  ascending order). The network has ``C + 1`` output channels.
* **sigmoid / region mode** — *region masks*: one binary mask per region, where a region
  is a union of labels (BraTS: WT = {1, 2, 3}, TC = {1, 3}, ET = {3}; METS adds RC = {4}).
  The network has ``R`` output channels and regions may overlap.

Predicted region masks go back to a label map by one paint order, defined here from the schema
(:func:`region_paint_order`, nnU-Net's convention): :func:`regions_to_labels` paints by it, and the
nnU-Net export writes it as the dataset's ``regions_class_order``.

Examples
--------
>>> import numpy as np
>>> from workbench.labels import BRATS_METS_2025
>>> label = np.array([[0, 1, 2], [3, 4, 3]])
>>> BRATS_METS_2025.to_region_masks(label).astype(int)[:, 1]   # WT, TC, ET, RC on row 1
array([[1, 0, 1],
       [1, 0, 1],
       [1, 0, 1],
       [0, 1, 0]])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from workbench._validate import check_choice

__all__ = [
    "BINARY",
    "BRATS_GLIOMA",
    "BRATS_METS_2025",
    "SCHEMAS",
    "LabelSchema",
    "LabelValueError",
    "TargetMode",
    "get_schema",
    "region_paint_order",
    "regions_to_labels",
    "resolve_schema",
]

TargetMode = Literal["softmax", "sigmoid"]


class LabelValueError(ValueError):
    """A label map holds values that its schema does not define."""


@dataclass(frozen=True)
class LabelSchema:
    """The labels of a dataset and the (possibly overlapping) regions built from them.

    Parameters
    ----------
    name : str
        Registry key, e.g. ``"brats_mets_2025"``.
    labels : Mapping[int, str]
        Foreground label value -> short name (``{1: "NETC", ...}``). 0 is always background
        and must not appear here.
    regions : Mapping[str, tuple[int, ...]]
        Region name -> the label values it unites, in evaluation order.
    """

    name: str
    labels: Mapping[int, str]
    regions: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.labels:
            raise ValueError(f"Schema {self.name!r} must define at least one foreground label.")
        bad = [v for v in self.labels if not isinstance(v, int) or v <= 0]
        if bad:
            raise ValueError(
                f"Schema {self.name!r}: label values must be positive integers (0 is background), got {bad}."
            )
        for region, members in self.regions.items():
            unknown = sorted(set(members) - set(self.labels))
            if not members or unknown:
                raise ValueError(
                    f"Schema {self.name!r}: region {region!r} must be a non-empty set of the schema's "
                    f"labels {sorted(self.labels)}, got {tuple(members)}."
                )

    @property
    def label_values(self) -> tuple[int, ...]:
        """Foreground label values in ascending order; class index ``i`` is ``label_values[i - 1]``."""
        return tuple(sorted(self.labels))

    @property
    def class_names(self) -> tuple[str, ...]:
        """Names of the foreground classes of softmax mode, in class-index order (1..C)."""
        return tuple(self.labels[v] for v in self.label_values)

    @property
    def region_names(self) -> tuple[str, ...]:
        """Names of the regions of sigmoid mode, in channel order."""
        return tuple(self.regions)

    def num_channels(self, mode: TargetMode) -> int:
        """Network output channels: ``C + 1`` in softmax mode, ``R`` in sigmoid mode."""
        _check_mode(mode)
        if mode == "softmax":
            return len(self.labels) + 1
        if not self.regions:
            raise ValueError(f"Schema {self.name!r} defines no regions, so sigmoid mode is unavailable.")
        return len(self.regions)

    def foreground_names(self, mode: TargetMode) -> tuple[str, ...]:
        """Names of the foreground channels that instances are computed for, per mode."""
        self.num_channels(mode)
        return self.class_names if mode == "softmax" else self.region_names

    def validate(self, label_map: np.ndarray) -> None:
        """Raise :class:`LabelValueError` if ``label_map`` holds a value outside ``{0} ∪ labels``.

        Parameters
        ----------
        label_map : ndarray of int, shape (*S)
        """
        label_map = np.asarray(label_map)
        if not (np.issubdtype(label_map.dtype, np.integer) or label_map.dtype == np.bool_):
            if not np.issubdtype(label_map.dtype, np.floating) or not np.all(np.mod(label_map, 1) == 0):
                raise LabelValueError(
                    f"Label map must hold integers, got dtype {label_map.dtype} with non-integer values."
                )
        present = np.unique(label_map)
        allowed = np.array((0, *self.label_values))
        offending = present[~np.isin(present, allowed)]
        if offending.size:
            raise LabelValueError(
                f"Label map holds values {offending.tolist()} that schema {self.name!r} does not define; "
                f"allowed: 0 (background), {self.describe()}."
            )

    def to_class_map(self, label_map: np.ndarray) -> np.ndarray:
        """Softmax-mode target: label values renumbered to consecutive class indices.

        Parameters
        ----------
        label_map : ndarray of int, shape (*S)

        Returns
        -------
        class_map : ndarray of int64, shape (*S), values in ``0..C``
        """
        label_map = np.asarray(label_map)
        self.validate(label_map)
        lut = np.zeros(max(self.label_values) + 1, dtype=np.int64)
        lut[list(self.label_values)] = np.arange(1, len(self.labels) + 1)
        return lut[label_map.astype(np.int64, copy=False)]

    def to_region_masks(self, label_map: np.ndarray) -> np.ndarray:
        """Sigmoid-mode target: one binary mask per region.

        Parameters
        ----------
        label_map : ndarray of int, shape (*S)

        Returns
        -------
        masks : ndarray of bool, shape (R, *S), channel order :attr:`region_names`
        """
        label_map = np.asarray(label_map)
        self.num_channels("sigmoid")
        self.validate(label_map)
        return np.stack([np.isin(label_map, members) for members in self.regions.values()])

    def to_target(self, label_map: np.ndarray, mode: TargetMode) -> np.ndarray:
        """Class map (softmax) or region masks (sigmoid), see the two methods above."""
        _check_mode(mode)
        return self.to_class_map(label_map) if mode == "softmax" else self.to_region_masks(label_map)

    def describe(self) -> str:
        """One line: labels and regions, as used in error messages."""
        labels = ", ".join(f"{v} {n}" for v, n in sorted(self.labels.items()))
        regions = ", ".join(f"{r} = {set(m)}" for r, m in self.regions.items())
        return f"labels {{{labels}}}" + (f", regions {{{regions}}}" if regions else "")


def _check_mode(mode: str) -> None:
    check_choice("mode", mode, ("softmax", "sigmoid"))


def region_paint_order(schema: str | LabelSchema) -> tuple[tuple[int, int], ...]:
    """``(region channel, label value)`` pairs in painting order: how region masks become a label map.

    The one paint order of the package (nnU-Net's convention for region-based training): the
    regions are painted from the largest (most labels) to the smallest, in schema order among
    equal sizes, each over the ones before it with its *own* label, the one label of the region
    that no region nested in it holds. For BraTS WT = {1, 2, 3} ⊃ TC = {1, 3} ⊃ ET = {3}: WT
    paints 2 (SNFH), TC paints 1 (NETC), ET paints 3; RC = {4} paints 4. This is well defined
    when any two regions are nested or disjoint and each region has exactly one own label.

    Parameters
    ----------
    schema : str or LabelSchema

    Returns
    -------
    tuple of (int, int)
        Channel index into :attr:`LabelSchema.region_names` and the label value it paints, in
        painting order; empty for a schema without regions.

    Raises
    ------
    ValueError
        If two regions overlap without one containing the other, or a region does not have
        exactly one label outside the regions nested inside it.

    Examples
    --------
    >>> region_paint_order("brats_mets_2025")       # WT -> 2, TC -> 1, ET -> 3, RC -> 4
    ((0, 2), (1, 1), (2, 3), (3, 4))
    """
    schema = get_schema(schema)
    members = [frozenset(m) for m in schema.regions.values()]
    names = schema.region_names
    for i, a in enumerate(members):
        for j, b in enumerate(members[i + 1 :], start=i + 1):
            if a & b and not (a <= b or b <= a):
                raise ValueError(
                    f"Schema {schema.name!r}: regions {names[i]!r} and {names[j]!r} overlap without nesting, "
                    "so region masks do not define a label map."
                )
    order = []
    for i, region in enumerate(members):
        nested = [k for k, m in enumerate(members) if m < region]
        own = sorted(region - set().union(*(members[k] for k in nested)))
        if len(own) != 1:
            inner = ", ".join(names[k] for k in nested) or "none"
            raise ValueError(
                f"Schema {schema.name!r}: region {names[i]!r} {sorted(region)} leaves labels {own} once the "
                f"regions nested in it ({inner}) are painted over it: it has labels {own} outside its nested "
                "regions, and exactly one is needed to paint it into a label map."
            )
        order.append((i, own[0]))
    order.sort(key=lambda pair: -len(members[pair[0]]))
    return tuple(order)


def regions_to_labels(masks: np.ndarray, schema: str | LabelSchema) -> np.ndarray:
    """Label map from region masks, painted in :func:`region_paint_order`; the inverse of
    :meth:`LabelSchema.to_region_masks`.

    Parameters
    ----------
    masks : ndarray of bool, shape (R, *S)
        One mask per region, channel order :attr:`LabelSchema.region_names`.
    schema : str or LabelSchema

    Returns
    -------
    ndarray of uint8, shape (*S)
        0 where no region is set.

    Raises
    ------
    ValueError
        If ``masks`` does not hold one mask per region, or the schema has no paint order
        (:func:`region_paint_order`).

    Examples
    --------
    >>> label = np.array([[0, 1, 2, 3, 4]])
    >>> regions_to_labels(BRATS_METS_2025.to_region_masks(label), BRATS_METS_2025)
    array([[0, 1, 2, 3, 4]], dtype=uint8)
    """
    schema = get_schema(schema)
    masks = np.asarray(masks, dtype=bool)
    if masks.shape[0] != len(schema.regions):
        raise ValueError(f"Expected {len(schema.regions)} region masks (R, *S), but got shape {masks.shape}.")
    label = np.zeros(masks.shape[1:], dtype=np.uint8)
    for channel, value in region_paint_order(schema):
        label[masks[channel]] = value
    return label


BRATS_METS_2025 = LabelSchema(
    name="brats_mets_2025",
    labels={1: "NETC", 2: "SNFH", 3: "ET", 4: "RC"},
    regions={"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,), "RC": (4,)},
)
"""BraTS-METS 2025: 1 non-enhancing tumour core, 2 surrounding FLAIR hyperintensity,
3 enhancing tumour, 4 resection cavity; regions WT, TC, ET, RC."""

BRATS_GLIOMA = LabelSchema(
    name="brats_glioma",
    labels={1: "NCR", 2: "ED", 3: "ET"},
    regions={"WT": (1, 2, 3), "TC": (1, 3), "ET": (3,)},
)
"""BraTS glioma (2021 numbering): 1 necrotic core, 2 oedema, 3 enhancing tumour."""

BINARY = LabelSchema(name="binary", labels={1: "FG"}, regions={"FG": (1,)})
"""One foreground label; softmax and sigmoid mode coincide up to the background channel."""

SCHEMAS: Mapping[str, LabelSchema] = {s.name: s for s in (BRATS_METS_2025, BRATS_GLIOMA, BINARY)}


def get_schema(name: str | LabelSchema) -> LabelSchema:
    """Look a schema up by name (a :class:`LabelSchema` passes through).

    Raises
    ------
    ValueError
        If ``name`` is not a registered schema; the message lists the known ones.
    """
    if isinstance(name, LabelSchema):
        return name
    try:
        return SCHEMAS[name]
    except KeyError:
        raise ValueError(f"Unknown label schema {name!r}; known schemas: {sorted(SCHEMAS)}.") from None


def resolve_schema(name: str | LabelSchema) -> LabelSchema:
    """A registered schema by name, or by a unique prefix of its name (``brats_mets`` ->
    ``brats_mets_2025``); what the command line accepts.

    Raises
    ------
    ValueError
        If no registered name equals ``name`` or starts with it, or several start with it; the
        message lists the registered names.

    Examples
    --------
    >>> resolve_schema("brats_mets").name
    'brats_mets_2025'
    """
    if isinstance(name, LabelSchema) or name in SCHEMAS:
        return get_schema(name)
    candidates = sorted(s for s in SCHEMAS if s.startswith(name))
    if len(candidates) == 1:
        return SCHEMAS[candidates[0]]
    reason = f"it is a prefix of several ({candidates})" if candidates else "no schema has that name"
    raise ValueError(f"Unknown label schema {name!r}: {reason}; known schemas: {sorted(SCHEMAS)}.")
