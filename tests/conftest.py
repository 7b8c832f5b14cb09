"""Suite-wide settings."""

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# The machines are shared and noisy: a per-example deadline would make property tests flaky, not stricter.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")


@pytest.fixture(autouse=True, scope="session")
def _atomic_moto_dynamodb() -> Iterator[None]:
    """DynamoDB answers each request atomically; moto needs help under threads (sandbox/moto_fixes.py)."""
    from sandbox.moto_fixes import atomic_dynamodb

    with atomic_dynamodb():
        yield
