"""Suite-wide settings."""

from hypothesis import HealthCheck, settings

# The machines are shared and noisy: a per-example deadline would make property tests flaky, not stricter.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")
