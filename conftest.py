"""Suite-wide settings for every test folder (tests/ and the plugins' own tests)."""

from hypothesis import HealthCheck, settings

# Property tests check behaviour, never speed: no per-example deadline, so a loaded
# machine (CI shares its two cores) cannot turn a slow example into a failure.
settings.register_profile("canopy", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("canopy")
