import pytest

pytest_plugins = ["crmsync.testing.pytest_plugin"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache: API throttles count there. (A database
    cache's rows are rolled back with each test's transaction.)"""
    from django.core.cache import caches
    from django.core.cache.backends.db import DatabaseCache

    for cache in caches.all(initialized_only=True):
        if not isinstance(cache, DatabaseCache):
            cache.clear()
    yield
