"""Instance statistics of a dataset: what the multi-class paper's Table 1 reports.

Per case and region: number of connected components, their volumes, and foreground voxels;
per region over the dataset: cases where it is present, components, median component volume
(mm³) and total voxels. The numbers that show a region's imbalance (e.g. BraTS-METS RC: present
in 10 % of cases, 32 components against 1,739 for ET).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from tqdm import tqdm

from workbench._validate import DEFAULT_CONNECTIVITY, check_connectivity
from workbench.data.manifest import Manifest, load_case
from workbench.instances import instance_maps
from workbench.metrics.panoptic import DEFAULT_SIZE_EDGES_MM3, size_strata, stratum_names

__all__ = ["stratum_counts", "summarise"]


def summarise(manifest: Manifest, *, connectivity: int = DEFAULT_CONNECTIVITY) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Component statistics of every labelled case of a manifest, per region of its schema.

    Parameters
    ----------
    manifest : Manifest
    connectivity : int
        Component connectivity (3D: 6, 18 or 26), checked before any case is read.

    Returns
    -------
    per_case : DataFrame
        One row per (case, region): ``case, split, region, components, voxels, volumes_mm3``
        (a list of component volumes).
    per_region : DataFrame
        One row per region: ``region, cases_present, components, median_size_mm3, total_voxels``.
    """
    connectivity = check_connectivity(connectivity, 3)
    schema = manifest.schema
    rows = []
    labelled = [case for case in manifest.cases if case.label is not None]
    for entry in tqdm(labelled, desc=f"summarising {manifest.name}", unit="case", disable=None):
        case = load_case(manifest, entry)
        masks = schema.to_region_masks(case.label)
        maps = instance_maps(masks[None], mode="sigmoid", connectivity=connectivity, spacing=case.spacing, voronoi=False)
        for k, region in enumerate(schema.region_names):
            rows.append(
                {
                    "case": entry.id,
                    "split": entry.split,
                    "region": region,
                    "components": int(maps.counts[0, k]),
                    "voxels": int(masks[k].sum()),
                    "volumes_mm3": maps.volumes_mm3(0, k).tolist(),
                }
            )
    per_case = pd.DataFrame(rows, columns=["case", "split", "region", "components", "voxels", "volumes_mm3"])
    per_region = pd.DataFrame(
        [
            {
                "region": region,
                "cases_present": int((group["components"] > 0).sum()),
                "components": int(group["components"].sum()),
                "median_size_mm3": float(np.median(sizes)) if (sizes := sum(group["volumes_mm3"], [])) else float("nan"),
                "total_voxels": int(group["voxels"].sum()),
            }
            for region, group in per_case.groupby("region", sort=False)
        ],
        columns=["region", "cases_present", "components", "median_size_mm3", "total_voxels"],
    )
    return per_case, per_region


def stratum_counts(per_case: pd.DataFrame, size_edges_mm3: tuple[float, ...] = DEFAULT_SIZE_EDGES_MM3) -> pd.DataFrame:
    """Components per split, region and size stratum: the lesions a held-out set can show effects on.

    Parameters
    ----------
    per_case : DataFrame
        :func:`summarise`'s first table.
    size_edges_mm3 : tuple of float
        Stratum edges (mm³), the metrics' by default (``<100``, ``100-1000``, ``>=1000``).

    Returns
    -------
    DataFrame
        Index ``split`` (in manifest order), columns ``(region, stratum)``, integer counts.
    """
    names = stratum_names(size_edges_mm3)
    rows = []
    for record in per_case.itertuples(index=False):
        strata = size_strata(np.asarray(record.volumes_mm3, dtype=np.float64), size_edges_mm3)
        for stratum, count in zip(names, np.bincount(strata, minlength=len(names))):
            rows.append((record.split, record.region, stratum, int(count)))
    table = pd.DataFrame(rows, columns=["split", "region", "stratum", "count"])
    wide = table.pivot_table(index="split", columns=["region", "stratum"], values="count", aggfunc="sum", sort=False)
    regions = list(dict.fromkeys(per_case["region"]))
    return wide.reindex(columns=pd.MultiIndex.from_product([regions, names]), fill_value=0).astype(int)
