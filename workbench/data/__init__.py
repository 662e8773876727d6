"""Data layer: manifests, NIfTI I/O and the synthetic phantom cohort."""
