"""Every loss test runs on both backends of :func:`workbench.losses.sums.voxel_sums`."""

from __future__ import annotations

import functools

import pytest

from workbench.losses import combined, sums


@pytest.fixture(params=["fused", "torch"], autouse=True, scope="module")
def backend(request):
    """Make the losses use one backend (module scope, so that hypothesis tests can use it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(combined, "voxel_sums", functools.partial(sums.voxel_sums, backend=request.param))
        yield request.param
