"""Instances of a segmentation target: connected components, their sizes and Voronoi cells.

For every batch element ``b`` and foreground channel ``k`` (classes ``1..C`` in softmax mode,
regions in sigmoid mode; DESIGN §2–3) the binary map ``y_k`` is split into connected components
(cc3d, connectivity explicit) numbered ``1..N``; each voxel of the volume is assigned to the
Voronoi cell of its nearest component (Euclidean distance in mm, voxel spacing honoured; ties go
to the smallest component id). ``N = 1`` makes the whole volume one cell; ``N = 0`` makes none.
Numpy/CPU only: this runs once per case, or per patch in data-loader workers, never inside a loss.

Package layout
--------------
- :mod:`workbench.instances.maps`: :class:`InstanceMaps` and :func:`instance_maps`,
  :func:`instance_maps_from_ids`, :func:`concat_instance_maps`, :func:`cached_instance_maps`;
  all re-exported here, so ``from workbench.instances import instance_maps`` is the import.
- :mod:`workbench.instances._voronoi`: the numba kernels, exact nearest-component labelling in
  O(voxels) and per-component sizes and bounding boxes in one pass.
- :mod:`workbench.instances.weights`: per-voxel inverse-size weight maps of instance maps, as the
  weighted losses define them, for viewing (not imported here).

Connectivity and spacing are checked by :mod:`workbench._validate`, as everywhere in the package.

Instance maps and training patches
----------------------------------
Maps are **recomputed on each training patch**, not cropped from whole-case maps. A loss sees only
the patch, and its definition (one term per component, domains that hide the other components,
Voronoi cells that tile the volume it sees) then holds exactly on what it sees: a component cut by
the patch border is the part the patch holds, cells are those of the components present, and the
loss with precomputed maps equals the loss that computes them on the fly from the same target.
Cropped whole-case maps would instead bring cells of components that lie wholly outside the patch
(terms with no foreground) and sizes of voxels the loss never sees (wrong inverse-size weights).
The cost is small and paid in the data-loader workers (``benchmarks/bench_instances.py`` measures
a 128³ patch). Whole-case maps, cached on disk with :func:`cached_instance_maps`, serve metrics
and the viewer.

Examples
--------
>>> import numpy as np
>>> target = np.zeros((1, 1, 3, 7), dtype=np.int64)     # (B, 1, Y, X), softmax mode, C = 1
>>> target[0, 0, 1, 1] = target[0, 0, 1, 5] = 1
>>> maps = instance_maps(target, connectivity=8)
>>> maps.counts.tolist()
[[2]]
>>> maps.cells[0, 0, 1]                                 # ties (x = 3) go to the smaller id
array([1, 1, 1, 1, 2, 2, 2], dtype=int32)
"""

from workbench.instances.maps import (
    InstanceMaps,
    Mode,
    cached_instance_maps,
    concat_instance_maps,
    instance_maps,
    instance_maps_from_ids,
)

__all__ = [
    "InstanceMaps",
    "Mode",
    "cached_instance_maps",
    "concat_instance_maps",
    "instance_maps",
    "instance_maps_from_ids",
]
