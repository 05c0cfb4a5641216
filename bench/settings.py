"""Settings of the benchmark servers: the project's settings (config.settings, from the
same environment) with the benchmark URLconf, which adds the ceiling view of
measurement 1 next to the real URLs."""

from config import settings as _base

globals().update({name: value for name, value in vars(_base).items() if name.isupper()})

ROOT_URLCONF = "bench.urls"
