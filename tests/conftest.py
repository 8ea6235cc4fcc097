"""Shared pytest fixtures: one AnnyBody per test session (the first ever also builds Anny's cache, ~1-2 min)."""

import os

import pytest

# PyTorch's OpenMP threads spin while they wait; on a shared 2-core machine that makes tests many
# times slower. Passive waiting must be chosen before torch starts its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def anny_body():
    """The default AnnyBody (cache in $LWGAN_CACHE_DIR or ~/.cache/lwgan), built once per session."""
    from lwgan.body.anny_body import AnnyBody

    return AnnyBody()
