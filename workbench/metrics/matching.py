"""Instances of a binary mask, their pairwise overlaps, and one-to-one matching on pair Dice.

Three steps, each a plain function over arrays (DESIGN §5):

1. :func:`connected_components` labels a binary mask ``1..N`` (cc3d, connectivity explicit).
2. :func:`overlap_table` reads every overlapping (prediction, reference) pair and its
   intersection from **one** pass over the voxels where both label maps are non-zero: the pair
   of labels of each such voxel is packed into one integer code and the codes are counted.
   Pairs that do not overlap never appear, so the cost does not grow with ``N_pred · N_ref``.
3. :func:`match_instances` pairs predictions with references one-to-one (Hungarian algorithm,
   :func:`scipy.optimize.linear_sum_assignment`) on the Dice of each pair, keeping only pairs
   with Dice ≥ the threshold.

Examples
--------
>>> import numpy as np
>>> ref = np.zeros((1, 8), dtype=bool); ref[0, 0:4] = True
>>> pred = np.zeros((1, 8), dtype=bool); pred[0, 2:4] = pred[0, 6:8] = True
>>> ref_labels, n_ref = connected_components(ref)
>>> pred_labels, n_pred = connected_components(pred)
>>> table = overlap_table(pred_labels, ref_labels)
>>> table.pred_ids.tolist(), table.ref_ids.tolist(), table.intersection.tolist()
([1], [1], [2])
>>> round(float(table.dice[0]), 4)              # 2·2 / (2 + 4)
0.6667
>>> matching = match_instances(table, threshold=0.5)
>>> matching.tp, matching.fp, matching.fn
(1, 1, 0)
"""

from __future__ import annotations

from dataclasses import dataclass

import cc3d
import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components as graph_components

from workbench._validate import check_connectivity, check_thresholds, expected

__all__ = ["Matching", "OverlapTable", "connected_components", "match_instances", "overlap_table"]

# Added to every eligible pair's weight: among matchings of equal total Dice (equal PQ), the one
# with more pairs (higher RQ) wins. Far below any difference of two Dice sums that matters.
_COUNT_TIE_BREAK = 1e-9


def connected_components(mask: np.ndarray, *, connectivity: int | None = None) -> tuple[np.ndarray, int]:
    """Label the connected components of a binary mask.

    Parameters
    ----------
    mask : ndarray of bool, shape (Y, X) or (Z, Y, X)
    connectivity : int, optional
        6, 18 or 26 in 3D; 4 or 8 in 2D. Default: 26 in 3D, 8 in 2D.

    Returns
    -------
    labels : ndarray of uint32, shape of ``mask``
        Component id ``1..N`` of each foreground voxel (numbered in raster order of their first
        voxel), 0 elsewhere.
    n : int
        Number of components ``N``.

    Raises
    ------
    ValueError
        If ``mask`` is not a 2D or 3D boolean array, or ``connectivity`` does not fit its
        dimension.

    Examples
    --------
    >>> mask = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=bool)
    >>> connected_components(mask, connectivity=4)[1], connected_components(mask, connectivity=8)[1]
    (2, 1)
    """
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ or mask.ndim not in (2, 3):
        raise ValueError(
            f"Expected `mask` to be a 2D or 3D boolean array, but got dtype {mask.dtype} and shape {mask.shape}."
        )
    connectivity = check_connectivity(connectivity, mask.ndim)
    # A uint8 view, not bool: cc3d's bool fast path mislabels some images (see workbench/instances/maps.py).
    labels, n = cc3d.connected_components(
        np.ascontiguousarray(mask).view(np.uint8), connectivity=connectivity, return_N=True, out_dtype=np.uint32
    )
    return labels, int(n)


@dataclass(frozen=True)
class OverlapTable:
    """Sizes of the components of a prediction and a reference, and every overlapping pair.

    Attributes
    ----------
    pred_sizes : ndarray of int64, shape (N_pred,)
        Voxels of prediction component ``i + 1``.
    ref_sizes : ndarray of int64, shape (N_ref,)
        Voxels of reference component ``j + 1``.
    pred_ids, ref_ids : ndarray of int64, shape (M,)
        The ``M`` overlapping pairs (ids ``1..N``), sorted by reference id, then prediction id.
    intersection : ndarray of int64, shape (M,)
        Voxels shared by each pair (≥ 1).
    """

    pred_sizes: np.ndarray
    ref_sizes: np.ndarray
    pred_ids: np.ndarray
    ref_ids: np.ndarray
    intersection: np.ndarray

    @property
    def n_pred(self) -> int:
        """Number of prediction components."""
        return len(self.pred_sizes)

    @property
    def n_ref(self) -> int:
        """Number of reference components."""
        return len(self.ref_sizes)

    @property
    def dice(self) -> np.ndarray:
        """Dice ``2·|P ∩ R| / (|P| + |R|)`` of each overlapping pair, shape (M,) float64."""
        return 2.0 * self.intersection / (self.pred_sizes[self.pred_ids - 1] + self.ref_sizes[self.ref_ids - 1])


def overlap_table(pred_labels: np.ndarray, ref_labels: np.ndarray) -> OverlapTable:
    """Component sizes and the intersection of every overlapping (prediction, reference) pair.

    Parameters
    ----------
    pred_labels, ref_labels : ndarray of int, same shape (*S)
        Instance label maps with ids ``1..N`` (0 = background), e.g. from
        :func:`connected_components`. Every id up to the maximum must hold a voxel.

    Returns
    -------
    OverlapTable

    Raises
    ------
    ValueError
        On different shapes, non-integer or negative labels, or ids ``1..max`` with no voxel.

    Notes
    -----
    One contingency pass: at the ``V`` voxels where both maps are non-zero the pair is encoded as
    ``ref · (N_pred + 1) + pred`` and the distinct codes are counted, ``O(V log V)`` with no
    ``N_pred × N_ref`` array. Sizes come from one bincount over each map's foreground.
    """
    pred_labels, ref_labels = np.asarray(pred_labels), np.asarray(ref_labels)
    if pred_labels.shape != ref_labels.shape:
        raise ValueError(
            "Expected `pred_labels` and `ref_labels` of the same shape, "
            f"but got {pred_labels.shape} and {ref_labels.shape}."
        )
    pred_flat, ref_flat = pred_labels.ravel(), ref_labels.ravel()
    pred_sizes = _label_sizes(pred_flat, "pred_labels")
    ref_sizes = _label_sizes(ref_flat, "ref_labels")
    both = np.flatnonzero((pred_flat > 0) & (ref_flat > 0))
    stride = len(pred_sizes) + 1
    codes = ref_flat[both].astype(np.int64) * stride + pred_flat[both]
    pairs, intersection = np.unique(codes, return_counts=True)
    ref_ids, pred_ids = np.divmod(pairs, stride)
    return OverlapTable(pred_sizes, ref_sizes, pred_ids, ref_ids, intersection.astype(np.int64))


def _label_sizes(flat: np.ndarray, name: str) -> np.ndarray:
    """Voxels of ids ``1..max``, shape (max,) int64; raises on bad dtype, negatives or gaps."""
    if not np.issubdtype(flat.dtype, np.integer):
        raise ValueError(f"Expected `{name}` to hold integer instance ids, but got dtype {flat.dtype}.")
    if flat.size and flat.min() < 0:
        raise ValueError(f"Expected `{name}` to hold non-negative instance ids, but got {int(flat.min())}.")
    ids = flat[np.flatnonzero(flat)]
    sizes = np.bincount(ids, minlength=1)[1:].astype(np.int64) if ids.size else np.zeros(0, np.int64)
    missing = np.flatnonzero(sizes == 0) + 1
    if missing.size:
        raise ValueError(
            f"Expected `{name}` to number its instances 1..N without gaps, "
            f"but ids {missing[:10].tolist()} hold no voxel."
        )
    return sizes


@dataclass(frozen=True)
class Matching:
    """One-to-one matches (true positives) between prediction and reference components.

    Attributes
    ----------
    pred_ids, ref_ids : ndarray of int64, shape (TP,)
        Matched pairs, sorted by reference id.
    dice : ndarray of float64, shape (TP,)
        Dice of each matched pair, all ≥ ``threshold``.
    n_pred, n_ref : int
        Components in the prediction and the reference.
    threshold : float
    """

    pred_ids: np.ndarray
    ref_ids: np.ndarray
    dice: np.ndarray
    n_pred: int
    n_ref: int
    threshold: float

    @property
    def tp(self) -> int:
        """Matched pairs."""
        return len(self.ref_ids)

    @property
    def fp(self) -> int:
        """Prediction components left unmatched."""
        return self.n_pred - self.tp

    @property
    def fn(self) -> int:
        """Reference components left unmatched."""
        return self.n_ref - self.tp


def match_instances(table: OverlapTable, threshold: float) -> Matching:
    """Hungarian one-to-one matching on pair Dice; a pair can match only if its Dice ≥ ``threshold``.

    Parameters
    ----------
    table : OverlapTable
    threshold : float
        In ``(0, 1]``. A pair with Dice exactly equal to it is eligible (``≥``, as panoptica).

    Returns
    -------
    Matching

    Raises
    ------
    ValueError
        If ``threshold`` is outside ``(0, 1]``.

    Notes
    -----
    The matching maximises the total Dice of the matched pairs among eligible pairs (plus a
    1e-9 bonus per pair, so that of two matchings with equal total Dice the one with more pairs
    wins). Because ``TP + ½FP + ½FN = ½(N_pred + N_ref)`` whatever the matching,
    ``PQ = 2·ΣDice_TP / (N_pred + N_ref)``: this matching maximises PQ, then RQ.
    The eligible pairs form a bipartite graph; it is split into its connected components and each
    is solved on its own (a single eligible pair needs no solver), so the cost stays small with
    thousands of lesions. Ties between matchings of equal weight are resolved deterministically
    by :func:`scipy.optimize.linear_sum_assignment`.
    """
    threshold = _check_threshold(threshold)
    dice = table.dice
    eligible = np.flatnonzero(dice >= threshold)
    ref_ids, pred_ids, pair_dice = table.ref_ids[eligible], table.pred_ids[eligible], dice[eligible]
    block = _blocks(ref_ids, pred_ids, table.n_ref)
    block_size = np.bincount(block)
    single = block_size[block] == 1
    chosen = [np.flatnonzero(single)]
    for b in np.unique(block[~single]):
        chosen.append(_solve_block(np.flatnonzero(block == b), ref_ids, pred_ids, pair_dice))
    keep = np.sort(np.concatenate(chosen))
    return Matching(pred_ids[keep], ref_ids[keep], pair_dice[keep], table.n_pred, table.n_ref, threshold)


def _check_threshold(threshold: float) -> float:
    """One Dice threshold in (0, 1], as :func:`~workbench._validate.check_thresholds` checks them."""
    what = "a Dice value in (0, 1]"
    if np.ndim(threshold) != 0:
        raise ValueError(expected("threshold", what, threshold))
    return check_thresholds(threshold, "threshold", what=what)[0]


def _blocks(ref_ids: np.ndarray, pred_ids: np.ndarray, n_ref: int) -> np.ndarray:
    """Connected component of the bipartite pair graph that each pair belongs to, shape (M,)."""
    if ref_ids.size == 0:
        return np.zeros(0, dtype=np.int64)
    # Nodes: references 0..n_ref-1, then predictions n_ref.. ; only nodes with a pair matter.
    nodes, inverse = np.unique(np.concatenate([ref_ids - 1, n_ref + pred_ids - 1]), return_inverse=True)
    rows, cols = inverse[: ref_ids.size], inverse[ref_ids.size :]
    graph = coo_array((np.ones(ref_ids.size), (rows, cols)), shape=(nodes.size, nodes.size))
    _, node_block = graph_components(graph, directed=False)
    return node_block[rows].astype(np.int64)


def _solve_block(pairs: np.ndarray, ref_ids: np.ndarray, pred_ids: np.ndarray, dice: np.ndarray) -> np.ndarray:
    """Indices (into ``pairs``' arrays) of the maximum-weight matching of one block."""
    refs, r = np.unique(ref_ids[pairs], return_inverse=True)
    preds, p = np.unique(pred_ids[pairs], return_inverse=True)
    weight = np.zeros((refs.size, preds.size))
    weight[r, p] = dice[pairs] + _COUNT_TIE_BREAK
    rows, cols = linear_sum_assignment(weight, maximize=True)
    position = np.full((refs.size, preds.size), -1)
    position[r, p] = pairs
    picked = position[rows, cols]
    return picked[picked >= 0]
