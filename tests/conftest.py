import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

settings.register_profile(
    "default",
    max_examples=int(os.environ.get("MEMSCAN_EXAMPLES", 150)),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("default")


@pytest.fixture(scope="session")
def memorized():
    """A tiny model that recites its first 6 of 30 random sequences (to different degrees)."""
    import torch

    from tiny_model import loaded, memorize, random_sequences, tiny_model

    torch.manual_seed(0)
    sequences = random_sequences(30, 24, seed=1)
    model = tiny_model()
    memorize(model, sequences[:6], steps=80, weights=[1, 1, 2, 4, 8, 8])
    return loaded(model), sequences
