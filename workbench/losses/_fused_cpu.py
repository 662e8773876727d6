"""CPU kernels of :func:`workbench.losses.sums.voxel_sums`: one pass forward, one pass backward.

Every loss of the workbench except InvWeight-global is a function of a few sums over voxels
(:class:`~workbench.losses.sums.VoxelSums`). Torch computes the activations (``p``, ``log p``,
``log(1 - p)``: the transcendental functions, which torch vectorizes and numba does not); the
forward kernel reads them once and adds every voxel into its bins — per (batch element, channel),
per component and per Voronoi cell — and the backward kernel writes ``∂loss/∂logits`` from ``p``
alone in one more pass, without a transcendental function. In softmax mode the forward kernel
replaces ``log(1 - p)`` of a voxel's top channel, where ``1 - p`` cancels, by the log of the other
channels' summed probabilities.

Arithmetic is float64 whatever the activations' dtype (float32 or float64); bins are per task (a
task is a chunk of one batch element's voxels, run in parallel) and summed afterwards. Inner loops
run over 1-D slices with a non-negative index and no branch, which LLVM vectorizes (indexing the
3-D arrays directly there is ~5× slower).

Array layouts (all C-contiguous, V voxels per batch element):

* ``p``, ``log_p``: (B, CH, V) activations; CH = C + 1 (softmax) or K (sigmoid); ``log_not_p``:
  (B, K, V) ``log1p(-p)`` of the foreground channels (softmax; possibly inaccurate on the top
  channel, which the kernel re-computes) or ``log(1 - p)`` (sigmoid).
* ``labels``: (B, V) int8 (or wider) class map with -1 on ignored voxels (softmax);
  ``masks``: (B, K, V) uint8 (sigmoid).
* ``comp``/``cell``: (B, K, V) int32 component / cell ids (0 = none), or (B, K, 0) when unused;
  ``comp_off``/``cell_off``: (B, K) int64 global index of id 1 of (b, k); ``cell_off`` is -1 for
  channels whose cell sums are not needed.
* outputs: ``chan`` (B, K, 6) = Σ p, Σ p·y, Σ log(1-p), Σ y·log p, Σ y·log(1-p), Σ y over
  non-ignored voxels; ``voxel`` (B, 2) = Σ -log p_target (softmax cross-entropy; 0 in sigmoid mode),
  non-ignored voxel count; ``seg`` (N, 6) = component Σ p, Σ log p, Σ log(1-p), cell Σ p,
  Σ log(1-p), voxel count (non-ignored) — see :class:`~workbench.losses.sums.VoxelSums`.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

TINY = np.finfo(np.float64).tiny
_FAST = {"reassoc", "contract"}  # let sums vectorize; no flag that assumes finite values
_SATURATED = 2.0**-9  # 1 - p below which the top channel's log(1 - p) is re-computed by a log
_BLOCK = 512  # voxels per block of the voxel-wise work across channels (its buffers stay in L1)


def tasks(batch: int, voxels: int) -> tuple[int, int]:
    """(chunks per batch element, chunk length) for ~2 tasks per thread."""
    chunks = max(1, min(-(-2 * numba.get_num_threads() // batch), voxels))
    return chunks, -(-voxels // chunks)


@njit(parallel=True, cache=True, fastmath=_FAST)
def softmax_forward(p, log_p, log_not_p, labels, comp, comp_off, cell, cell_off, top, rest, chunks, length, n_seg):
    """The sums of the module docstring, block by block (a block's activations stay in cache).

    With ``log(1 - p)`` (``top``, ``rest``: (B, V) outputs, else (B, 0)) it finds each voxel's
    channel with p > 1/2 (-1 where none) and its 1 - p as the sum of the other channels' p,
    ``rest`` (no cancellation, unlike ``1 - p``), and writes both for the backward pass. On a
    foreground top channel ``log(1 - p)`` becomes ``log(rest)``: ``log_not_p`` plus a two-term
    series correction where 1 - p > 2^-9 (there ``1 - p`` and ``rest`` differ by a few ulps of 1),
    else a ``log`` (saturated voxels, few outside confident foreground).
    """
    batch, channels, voxels = p.shape
    need_ln = top.shape[1] > 0
    n_tasks = batch * chunks
    chan = np.zeros((n_tasks, channels - 1, 6))
    voxel = np.zeros((n_tasks, 2))
    seg = np.zeros((n_tasks, n_seg, 6))
    has_comp = comp.shape[2] > 0
    has_cell = cell.shape[2] > 0
    for task in prange(n_tasks):
        b = task // chunks
        start = (task % chunks) * length
        stop = min(start + length, voxels)
        top_block = np.full(_BLOCK, -1, dtype=np.int32)
        rest_block = np.zeros(_BLOCK)
        log_rest = np.zeros(_BLOCK)
        saturated = np.zeros(_BLOCK, dtype=np.bool_)
        ln_block = np.zeros(_BLOCK)
        s_ce = 0.0  # Σ log p_target: the background channel's part here, the others' Σ y log p below
        count = 0.0
        for block in range(start, stop, _BLOCK):
            n = min(_BLOCK, stop - block)
            lab = labels[b, block : block + n]
            lp0 = log_p[b, 0, block : block + n]
            for i in range(n):
                count += 1.0 if lab[i] >= 0 else 0.0
                s_ce += float(lp0[i]) if lab[i] == 0 else 0.0
            if need_ln:
                _top_and_rest(p, b, block, n, top_block, rest_block)
                top[b, block : block + n] = top_block[:n]
                rest[b, block : block + n] = rest_block[:n]
                for i in range(n):  # rare: a foreground channel with p > 1 - 2^-9
                    saturated[i] = top_block[i] > 0 and rest_block[i] < _SATURATED
                    if saturated[i]:
                        log_rest[i] = math.log(max(rest_block[i], TINY))
            for k in range(1, channels):
                kk = k - 1
                pk = p[b, k, block : block + n]
                lpk = log_p[b, k, block : block + n]
                lnk = log_not_p[b, kk, block : block + n] if need_ln else pk
                s_p = 0.0
                s_py = 0.0
                s_ln = 0.0
                s_ylp = 0.0
                s_yln = 0.0
                s_y = 0.0
                for i in range(n):
                    w = 1.0 if lab[i] >= 0 else 0.0
                    y = 1.0 if lab[i] == k else 0.0
                    ln = 0.0
                    if need_ln:  # on the top channel: log(rest) = log(1 - p) + log1p(x), x = (rest - (1 - p)) / (1 - p)
                        q = 1.0 - float(pk[i])
                        x = (rest_block[i] - q) / q  # |x| < 4e-5 where not saturated: two terms of log1p suffice
                        on_top = log_rest[i] if saturated[i] else float(lnk[i]) + x - 0.5 * x * x
                        ln = on_top if top_block[i] == k else float(lnk[i])
                        ln_block[i] = ln
                    s_p += w * float(pk[i])
                    s_py += y * float(pk[i])
                    s_ln += w * ln
                    s_ylp += y * float(lpk[i])
                    s_yln += y * ln
                    s_y += y
                chan[task, kk, 0] += s_p
                chan[task, kk, 1] += s_py
                chan[task, kk, 2] += s_ln
                chan[task, kk, 3] += s_ylp
                chan[task, kk, 4] += s_yln
                chan[task, kk, 5] += s_y
                s_ce += s_ylp
                if has_comp:
                    ck = comp[b, kk, block : block + n]
                    offset = comp_off[b, kk] - 1
                    for i in range(n):
                        if ck[i] > 0:
                            j = offset + ck[i]
                            seg[task, j, 0] += pk[i]
                            seg[task, j, 1] += lpk[i]
                            seg[task, j, 2] += ln_block[i]
                if has_cell and cell_off[b, kk] >= 0:
                    ck = cell[b, kk, block : block + n]
                    offset = cell_off[b, kk] - 1
                    for i in range(n):
                        if lab[i] >= 0:
                            j = offset + ck[i]
                            seg[task, j, 3] += pk[i]
                            seg[task, j, 4] += ln_block[i]
                            seg[task, j, 5] += 1.0
        voxel[task, 0] = -s_ce
        voxel[task, 1] = count
    return chan, voxel, seg


@njit(inline="always", fastmath=_FAST)
def _top_and_rest(p, b, block, n, top, rest):
    """For voxels ``block .. block + n`` of ``p[b]``: the channel with p > 1/2 (-1 where none) into
    ``top[:n]``, and the other channels' summed p, 1 - p_top without cancellation, into ``rest[:n]``."""
    for i in range(n):
        top[i] = -1
        rest[i] = 0.0
    for k in range(p.shape[1]):
        row = p[b, k, block : block + n]
        label = np.int32(k)
        for i in range(n):
            top[i] = label if row[i] > 0.5 else top[i]
    for k in range(p.shape[1]):
        row = p[b, k, block : block + n]
        for i in range(n):
            rest[i] += float(row[i]) if top[i] != k else 0.0


@njit(parallel=True, cache=True, fastmath=_FAST)
def softmax_backward(p, labels, comp, comp_off, cell, cell_off, top, rest, g_chan, g_voxel, g_seg, chunks, length, out):
    """∂loss/∂z_j = Σ_k a_k ∂p_k/∂z_j + b_k ∂log p_k/∂z_j + c_k ∂log(1 - p_k)/∂z_j, where
    ∂p_k/∂z_j = p_k (δ_kj - p_j), ∂log p_k/∂z_j = δ_kj - p_j, ∂log(1 - p_k)/∂z_j = [j ≠ k] p_j / (1 - p_k) - p_j;
    so g_j = p_j (a_j - Σ a_k p_k) + b_j - p_j (Σ b_k + Σ c_k - Σ_{k≠top} c_k / (1 - p_k))
    + [j ≠ top] p_j (c_top / Σ_{i≠top} p_i - c_j / (1 - p_j)), where ``top`` is the channel with p > 1/2
    (if any; from :func:`softmax_forward`), so that every factor is bounded (1 - p_k ≥ 1/2 off the top)."""
    batch, channels, voxels = p.shape
    has_comp = comp.shape[2] > 0
    has_cell = cell.shape[2] > 0
    need_ln = top.shape[1] > 0
    for task in prange(batch * chunks):
        b = task // chunks
        start = (task % chunks) * length
        stop = min(start + length, voxels)
        ga = np.zeros((channels, _BLOCK))  # ∂loss/∂p_k
        gb = np.zeros((channels, _BLOCK))  # ∂loss/∂log p_k
        gc = np.zeros((channels, _BLOCK))  # ∂loss/∂log(1 - p_k), then c_k / (1 - p_k) off the top
        s_ap = np.zeros(_BLOCK)
        s_bc = np.zeros(_BLOCK)
        c_top = np.zeros(_BLOCK)
        for block in range(start, stop, _BLOCK):
            n = min(_BLOCK, stop - block)
            lab = labels[b, block : block + n]
            for k in range(1, channels):
                kk = k - 1
                a0, a1, c0, c1, b1 = g_chan[b, kk, 0], g_chan[b, kk, 1], g_chan[b, kk, 2], g_chan[b, kk, 4], g_chan[b, kk, 3]
                gak, gbk, gck = ga[k], gb[k], gc[k]
                for i in range(n):
                    w = 1.0 if lab[i] >= 0 else 0.0
                    y = 1.0 if lab[i] == k else 0.0
                    gak[i] = w * a0 + y * a1
                    gbk[i] = y * b1
                    gck[i] = w * c0 + y * c1
                if has_comp:
                    ck = comp[b, kk, block : block + n]
                    offset = comp_off[b, kk] - 1
                    for i in range(n):
                        if ck[i] > 0:
                            j = offset + ck[i]
                            gak[i] += g_seg[j, 0]
                            gbk[i] += g_seg[j, 1]
                            gck[i] += g_seg[j, 2]
                if has_cell and cell_off[b, kk] >= 0:
                    ck = cell[b, kk, block : block + n]
                    offset = cell_off[b, kk] - 1
                    for i in range(n):
                        if lab[i] >= 0:
                            j = offset + ck[i]
                            gak[i] += g_seg[j, 3]
                            gck[i] += g_seg[j, 4]
            g_ce = g_voxel[b, 0]
            for i in range(n):
                gb[0, i] = 0.0
                s_ap[i] = 0.0
                s_bc[i] = 0.0
            for i in range(n):
                if lab[i] >= 0:
                    gb[lab[i], i] -= g_ce
            if need_ln:
                tp = top[b, block : block + n]
                rs = rest[b, block : block + n]
                for i in range(n):
                    c_top[i] = gc[tp[i], i] / max(float(rs[i]), TINY) if tp[i] >= 0 else 0.0
            for k in range(channels):
                pk = p[b, k, block : block + n]
                gak, gbk, gck = ga[k], gb[k], gc[k]
                if need_ln:
                    for i in range(n):
                        off_top = 1.0 if tp[i] != k else 0.0
                        c = gck[i]
                        gck[i] = off_top * c / (1.0 - off_top * float(pk[i]))
                        s_ap[i] += gak[i] * float(pk[i])
                        s_bc[i] += gbk[i] + c - gck[i]
                else:
                    for i in range(n):
                        s_ap[i] += gak[i] * float(pk[i])
                        s_bc[i] += gbk[i]
            for j in range(channels):
                pj = p[b, j, block : block + n]
                gaj, gbj, gcj = ga[j], gb[j], gc[j]
                oj = out[b, j, block : block + n]
                if need_ln:
                    for i in range(n):
                        off_top = 1.0 if tp[i] != j else 0.0
                        oj[i] = float(pj[i]) * (gaj[i] - s_ap[i] - s_bc[i] + off_top * c_top[i] - gcj[i]) + gbj[i]
                else:
                    for i in range(n):
                        oj[i] = float(pj[i]) * (gaj[i] - s_ap[i] - s_bc[i]) + gbj[i]


@njit(parallel=True, cache=True, fastmath=_FAST)
def sigmoid_forward(p, log_p, log_not_p, masks, comp, comp_off, cell, cell_off, chunks, length, n_seg):
    batch, channels, voxels = p.shape
    n_tasks = batch * chunks
    chan = np.zeros((n_tasks, channels, 6))
    voxel = np.zeros((n_tasks, 2))
    seg = np.zeros((n_tasks, n_seg, 6))
    has_comp = comp.shape[2] > 0
    has_cell = cell.shape[2] > 0
    for task in prange(n_tasks):
        b = task // chunks
        start = (task % chunks) * length
        stop = min(start + length, voxels)
        voxel[task, 1] = stop - start
        for k in range(channels):
            pk = p[b, k, start:stop]
            lpk = log_p[b, k, start:stop]
            lnk = log_not_p[b, k, start:stop]
            yk = masks[b, k, start:stop]
            s_p = 0.0
            s_py = 0.0
            s_ln = 0.0
            s_ylp = 0.0
            s_yln = 0.0
            s_y = 0.0
            for i in range(stop - start):
                y = float(yk[i])
                s_p += float(pk[i])
                s_py += y * float(pk[i])
                s_ln += float(lnk[i])
                s_ylp += y * float(lpk[i])
                s_yln += y * float(lnk[i])
                s_y += y
            chan[task, k, 0] = s_p
            chan[task, k, 1] = s_py
            chan[task, k, 2] = s_ln
            chan[task, k, 3] = s_ylp
            chan[task, k, 4] = s_yln
            chan[task, k, 5] = s_y
            if has_comp:
                ck = comp[b, k, start:stop]
                offset = comp_off[b, k] - 1
                for i in range(stop - start):
                    if ck[i] > 0:
                        j = offset + ck[i]
                        seg[task, j, 0] += pk[i]
                        seg[task, j, 1] += lpk[i]
                        seg[task, j, 2] += lnk[i]
            if has_cell and cell_off[b, k] >= 0:
                ck = cell[b, k, start:stop]
                offset = cell_off[b, k] - 1
                for i in range(stop - start):
                    j = offset + ck[i]
                    seg[task, j, 3] += pk[i]
                    seg[task, j, 4] += lnk[i]
                    seg[task, j, 5] += 1.0
    return chan, voxel, seg


@njit(parallel=True, cache=True, fastmath=_FAST)
def sigmoid_backward(p, masks, comp, comp_off, cell, cell_off, g_chan, g_seg, chunks, length, out):
    """∂loss/∂z = a p (1 - p) + b (1 - p) - c p for ∂loss/∂(p, log p, log(1 - p)) = (a, b, c)."""
    batch, channels, voxels = p.shape
    has_comp = comp.shape[2] > 0
    has_cell = cell.shape[2] > 0
    for task in prange(batch * chunks):
        b = task // chunks
        start = (task % chunks) * length
        stop = min(start + length, voxels)
        ga = np.empty(_BLOCK)
        gb = np.empty(_BLOCK)
        gc = np.empty(_BLOCK)
        for k in range(channels):
            a0, a1, c0, c1, b1 = g_chan[b, k, 0], g_chan[b, k, 1], g_chan[b, k, 2], g_chan[b, k, 4], g_chan[b, k, 3]
            use_cell = has_cell and cell_off[b, k] >= 0
            for block in range(start, stop, _BLOCK):
                n = min(_BLOCK, stop - block)
                yk = masks[b, k, block : block + n]
                for i in range(n):
                    y = float(yk[i])
                    ga[i] = a0 + y * a1
                    gb[i] = y * b1
                    gc[i] = c0 + y * c1
                if has_comp:
                    ck = comp[b, k, block : block + n]
                    offset = comp_off[b, k] - 1
                    for i in range(n):
                        if ck[i] > 0:
                            j = offset + ck[i]
                            ga[i] += g_seg[j, 0]
                            gb[i] += g_seg[j, 1]
                            gc[i] += g_seg[j, 2]
                if use_cell:
                    ck = cell[b, k, block : block + n]
                    offset = cell_off[b, k] - 1
                    for i in range(n):
                        j = offset + ck[i]
                        ga[i] += g_seg[j, 3]
                        gc[i] += g_seg[j, 4]
                pk = p[b, k, block : block + n]
                ok = out[b, k, block : block + n]
                for i in range(n):
                    q = float(pk[i])
                    ok[i] = (ga[i] * (1.0 - q) - gc[i]) * q + gb[i] * (1.0 - q)
