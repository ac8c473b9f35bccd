import pytest

pytest_plugins = ["crmsync.testing.pytest_plugin"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache: API throttles count there."""
    from django.core.cache import caches

    for cache in caches.all(initialized_only=True):
        cache.clear()
    yield
