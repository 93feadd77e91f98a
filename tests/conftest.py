import os
import sys
from pathlib import Path

# No test may reach for a model hub: the machine may be offline, and retries cost ~25 s.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

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


@pytest.fixture(scope="session")
def workspace(tmp_path_factory):
    """A memorizing tiny model saved with save_pretrained, and forget / unseen JSONL files."""
    from helpers import write_jsonl
    from tiny_model import as_text, memorize, random_sequences, tiny_model, tiny_tokenizer

    root = tmp_path_factory.mktemp("model")
    sequences = random_sequences(30, 20, seed=2)
    model = tiny_model()
    memorize(model, sequences[:6], steps=80, weights=[1, 1, 2, 4, 8, 8])
    model.save_pretrained(root / "tiny")
    tiny_tokenizer().save_pretrained(root / "tiny")
    write_jsonl(root / "forget.jsonl", [{"id": f"f{i}", "text": as_text(s)} for i, s in enumerate(sequences[:6])])
    write_jsonl(root / "unseen.jsonl", [{"id": f"u{i}", "text": as_text(s)} for i, s in enumerate(sequences[6:])])
    return root


@pytest.fixture(scope="session")
def kjv_index(tmp_path_factory):
    """The built-in corpus indexed in three shards."""
    from helpers import memscan

    out = tmp_path_factory.mktemp("idx") / "kjv"
    result = memscan("index", "build", "kjv", "-o", out, "--shard-tokens", 400_000)
    assert result.returncode == 0, result.stderr
    return out
