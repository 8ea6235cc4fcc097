"""Shared pytest fixtures: one AnnyBody per test session (the first ever also builds Anny's cache, ~1-2 min)."""

import pytest


@pytest.fixture(scope="session")
def anny_body():
    """The default AnnyBody (cache in $LWGAN_CACHE_DIR or ~/.cache/lwgan), built once per session."""
    from lwgan.body.anny_body import AnnyBody

    return AnnyBody()
