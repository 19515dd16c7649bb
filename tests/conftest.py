import os

from hypothesis import HealthCheck, settings

# "ci" (default): derandomized, so a CI run is reproducible; "thorough": random examples,
# for hunting rare cases: HYPOTHESIS_PROFILE=thorough HYPOTHESIS_SCALE=10 python -m pytest
# (tests that set max_examples multiply it by HYPOTHESIS_SCALE, see tests/strategies.py)
settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow],
                          print_blob=True, derandomize=True)
settings.register_profile("thorough", deadline=None, max_examples=1000,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
