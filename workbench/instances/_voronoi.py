"""Exact nearest-seed labelling (the Voronoi partition of labelled seeds) in O(voxels).

The numba kernels behind :mod:`workbench.instances` (private to that package):
:func:`nearest_seed_labels` gives the Voronoi cells of :class:`~workbench.instances.InstanceMaps`,
:func:`segment_sizes_and_boxes` the component sizes and bounding boxes, both in one pass.

The squared Euclidean distance transform is separable (Felzenszwalb & Huttenlocher 2012):
a 1D pass along axis 0 gives every voxel its nearest seed on its own line, and each further
pass (axis 1, then axis 2) takes, per line, the lower envelope of the parabolas
``(q - p)² · w + F[p]`` left by the previous pass (``w`` = spacing² of that axis). Carrying the
*label* of each parabola's seed instead of its coordinates gives the Voronoi cell of every
voxel without the (D, *S) index array that ``scipy.ndimage.distance_transform_edt`` builds.
Only columns along axis 0 that hold a seed take part in the first pass (the others are
infinitely far), the second pass works plane by plane in a small buffer, the last writes the
labels row by row, and envelope boundaries are compared by cross-multiplication instead of
division: 5-10x faster than scipy's feature transform (``benchmarks/RESULTS.md``).

Ties (a voxel equidistant from seeds of different labels) go to the smallest label. Every
pass keeps all minimisers: intersections are exact rationals, so equal distances compare
equal whenever squared spacings and coordinates are exactly representable (any isotropic
spacing, which is taken as 1; any spacing with a short binary expansion, e.g. 0.5, 0.9375, 1, 3),
and the smallest label among tied candidates is kept; the minimum of minima is the minimum over
all nearest seeds.

Kernels are compiled with numba on first use and cached on disk.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["nearest_seed_labels", "segment_sizes_and_boxes"]

_INF = np.inf


def nearest_seed_labels(
    seeds: np.ndarray, spacing: tuple[float, ...], out: np.ndarray | None = None
) -> np.ndarray:
    """Label of the nearest seed voxel for every voxel (ties: smallest label).

    Parameters
    ----------
    seeds : ndarray of int, shape (Y, X) or (Z, Y, X)
        0 = not a seed, positive values = seed labels.
    spacing : tuple of float
        Voxel size per axis (same length as ``seeds.ndim``).
    out : ndarray of int32, optional
        C-contiguous array of the same shape to write the result into.

    Returns
    -------
    cells : ndarray of int32, same shape as ``seeds``
        All zeros when there is no seed.
    """
    if out is None:
        out = np.empty(seeds.shape, dtype=np.int32)
    if out.shape != seeds.shape or out.dtype != np.int32 or not out.flags.c_contiguous:
        raise ValueError(f"`out` must be a C-contiguous int32 array of shape {seeds.shape}.")
    volume = np.ascontiguousarray(seeds, dtype=np.int32)
    cells = out
    if volume.ndim == 2:
        volume, cells, spacing = volume[None], cells[None], (1.0, *spacing)
    if volume.ndim != 3 or len(spacing) != 3:
        raise ValueError(f"Expected a 2D or 3D seed array, got shape {seeds.shape}.")
    weights = np.asarray(spacing, dtype=np.float64) ** 2
    if len(set(spacing[-seeds.ndim :])) == 1:  # isotropic: only ratios matter, and 1 keeps every tie exact
        weights = np.ones(3)
    _nearest_seed_labels_3d(volume, weights[0], weights[1], weights[2], cells)
    return out


def segment_sizes_and_boxes(segments: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Voxel count and bounding box of each segment ``1..count`` in one pass.

    Parameters
    ----------
    segments : ndarray of int, shape (*S), 2D or 3D
        0 = none, ``1..count`` = segment ids.
    count : int

    Returns
    -------
    sizes : ndarray of int64, shape (count,)
    boxes : ndarray of int64, shape (count, 2, D)
        ``boxes[n - 1, 0]`` is the first voxel of segment ``n``, ``boxes[n - 1, 1]`` one past
        the last, per axis (slice bounds).
    """
    volume = np.ascontiguousarray(segments)
    ndim = volume.ndim
    if ndim == 2:
        volume = volume[None]
    sizes, boxes = _sizes_and_boxes_3d(volume, count)
    return sizes, boxes[:, :, 3 - ndim :]


@numba.njit(cache=True, nogil=True)
def _lower_envelope(pos, f, m, w, v, zn, zd, h):
    """Lower envelope of the parabolas ``(q - pos[i])² w + f[i]``, ``i < m`` (``pos`` increasing).

    ``h`` is a scratch buffer of length ``m``. Fills ``v[0..k]`` with the indices of the
    envelope's parabolas and the boundaries between them as fractions ``zn[j] / zd[j]``
    (``zd > 0``; compared by cross-multiplication, so without divisions) for ``j = 1..k``;
    returns ``k``. Only strictly dominated parabolas are
    dropped: one that touches the envelope at a single point may be the smallest-label tie there.
    """
    for i in range(m):
        h[i] = f[i] + w * pos[i] * pos[i]
    k = 0
    v[0] = 0
    for i in range(1, m):
        while True:
            p = v[k]
            num = h[i] - h[p]
            den = 2.0 * w * (pos[i] - pos[p])
            if k == 0 or not num * zd[k] < zn[k] * den:
                break
            k -= 1
        k += 1
        v[k] = i
        zn[k] = num
        zd[k] = den
    return k


@numba.njit(cache=True, nogil=True, inline="always")
def _envelope_argmin(q, j, k, v, zn, zd, lab):
    """Index of the parabola minimal at ``q`` (segment ``j``), smallest label among ties."""
    best = v[j]
    t = j + 1
    while t <= k and zn[t] <= q * zd[t]:
        if lab[v[t]] < lab[best]:
            best = v[t]
        t += 1
    return best


@numba.njit(cache=True, nogil=True)
def _nearest_seed_labels_3d(seeds, w0, w1, w2, labels):
    """Pass 1 along axis 0 in seeded columns only, then per plane: pass 2 along axis 1 for
    the seeded x positions into a small plane buffer, pass 3 along axis 2 into the output."""
    nz, ny, nx = seeds.shape
    column_seeded = np.zeros((ny, nx), dtype=np.bool_)
    for zi in range(nz):
        for yi in range(ny):
            for xi in range(nx):
                if seeds[zi, yi, xi] > 0:
                    column_seeded[yi, xi] = True
    # Seeded columns ordered by x, then y; x_start[i]..x_start[i+1] are those at xs[i].
    n_cols = 0
    for yi in range(ny):
        for xi in range(nx):
            if column_seeded[yi, xi]:
                n_cols += 1
    if n_cols == 0:
        labels[:] = 0
        return
    col_y = np.empty(n_cols, dtype=np.int64)
    col_x = np.empty(n_cols, dtype=np.int64)
    xs = np.empty(nx, dtype=np.int64)
    x_start = np.empty(nx + 1, dtype=np.int64)
    c = 0
    n_xs = 0
    for xi in range(nx):
        first = c
        for yi in range(ny):
            if column_seeded[yi, xi]:
                col_y[c] = yi
                col_x[c] = xi
                c += 1
        if c > first:
            xs[n_xs] = xi
            x_start[n_xs] = first
            n_xs += 1
    x_start[n_xs] = c

    # Pass 1: nearest seed along axis 0 in each seeded column, as two sweeps over the planes.
    col_f = np.empty((nz, n_cols))
    col_l = np.zeros((nz, n_cols), dtype=np.int32)
    last = np.full(n_cols, -1, dtype=np.int64)
    last_label = np.zeros(n_cols, dtype=np.int32)
    for zi in range(nz):
        for c in range(n_cols):
            s = seeds[zi, col_y[c], col_x[c]]
            if s > 0:
                last[c] = zi
                last_label[c] = s
            if last[c] >= 0:
                d = zi - last[c]
                col_f[zi, c] = d * d * w0
                col_l[zi, c] = last_label[c]
            else:
                col_f[zi, c] = _INF
    last[:] = -1
    for zi in range(nz - 1, -1, -1):
        for c in range(n_cols):
            s = seeds[zi, col_y[c], col_x[c]]
            if s > 0:
                last[c] = zi
                last_label[c] = s
            if last[c] >= 0:
                d = last[c] - zi
                f = d * d * w0
                if f < col_f[zi, c] or (f == col_f[zi, c] and last_label[c] < col_l[zi, c]):
                    col_f[zi, c] = f
                    col_l[zi, c] = last_label[c]

    n = max(ny, nx, n_cols)
    pos = np.empty(n, dtype=np.int64)
    fbuf = np.empty(n)
    lbuf = np.empty(n, dtype=np.int32)
    v = np.empty(n, dtype=np.int64)
    zn = np.empty(n + 1)
    hbuf = np.empty(n)
    zd = np.empty(n + 1)
    plane_f = np.empty((ny, n_xs))
    plane_l = np.empty((ny, n_xs), dtype=np.int32)
    for zi in range(nz):
        # Pass 2 along axis 1 at each seeded x; sites are that x's seeded columns.
        for i in range(n_xs):
            m = x_start[i + 1] - x_start[i]
            for t in range(m):
                c = x_start[i] + t
                pos[t] = col_y[c]
                fbuf[t] = col_f[zi, c]
                lbuf[t] = col_l[zi, c]
            k = _lower_envelope(pos, fbuf, m, w1, v, zn, zd, hbuf)
            j = 0
            for q in range(ny):
                while j < k and zn[j + 1] < q * zd[j + 1]:
                    j += 1
                best = _envelope_argmin(q, j, k, v, zn, zd, lbuf)
                d = q - pos[best]
                plane_f[q, i] = d * d * w1 + fbuf[best]
                plane_l[q, i] = lbuf[best]
        # Pass 3 along axis 2: sites are the seeded x positions; labels only.
        for yi in range(ny):
            row_l = plane_l[yi]
            out = labels[zi, yi]
            uniform = True
            for i in range(1, n_xs):
                if row_l[i] != row_l[0]:
                    uniform = False
                    break
            if uniform:  # every candidate carries one label, so every voxel gets it
                out[:] = row_l[0]
                continue
            k = _lower_envelope(xs, plane_f[yi], n_xs, w2, v, zn, zd, hbuf)
            j = 0
            for q in range(nx):
                while j < k and zn[j + 1] < q * zd[j + 1]:
                    j += 1
                if j == k or zn[j + 1] > q * zd[j + 1]:
                    out[q] = row_l[v[j]]
                else:
                    out[q] = row_l[_envelope_argmin(q, j, k, v, zn, zd, row_l)]


@numba.njit(cache=True, nogil=True)
def _sizes_and_boxes_3d(segments, count):
    nz, ny, nx = segments.shape
    sizes = np.zeros(count, dtype=np.int64)
    boxes = np.empty((count, 2, 3), dtype=np.int64)
    for i in range(count):
        boxes[i, 0, 0] = nz
        boxes[i, 0, 1] = ny
        boxes[i, 0, 2] = nx
        boxes[i, 1, :] = 0
    for zi in range(nz):
        for yi in range(ny):
            for xi in range(nx):
                s = segments[zi, yi, xi]
                if s <= 0:
                    continue
                i = s - 1
                sizes[i] += 1
                if zi < boxes[i, 0, 0]:
                    boxes[i, 0, 0] = zi
                if yi < boxes[i, 0, 1]:
                    boxes[i, 0, 1] = yi
                if xi < boxes[i, 0, 2]:
                    boxes[i, 0, 2] = xi
                if zi + 1 > boxes[i, 1, 0]:
                    boxes[i, 1, 0] = zi + 1
                if yi + 1 > boxes[i, 1, 1]:
                    boxes[i, 1, 1] = yi + 1
                if xi + 1 > boxes[i, 1, 2]:
                    boxes[i, 1, 2] = xi + 1
    return sizes, boxes
