"""Hypothesis profiles: the default is derandomized, so every run (and CI) tries the same
examples and a red build always reproduces; `--hypothesis-profile=explore` draws fresh ones."""

from hypothesis import settings

settings.register_profile("default", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("default")
