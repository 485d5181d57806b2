"""Shared test configuration: hypothesis profiles and the PostgreSQL switch."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# "ci": thorough (CI sets HYPOTHESIS_PROFILE=ci); "dev": quick, the default on a developer machine.
settings.register_profile(
    "ci",
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "dev",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if _ci else "dev"))
