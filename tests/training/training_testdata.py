"""Row builders for the training tests (a uniquely named module: other test folders have a conftest too)."""
import json


def make_rows(count: int, salt: str = "") -> list[bytes]:
    """`count` labelled review rows as JSON bytes; `salt` gives a different Datanet of the same size."""
    return [json.dumps({"text": f"{salt}review {i}: {'a fine film' if i % 2 else 'a dull plot'}",
                        "label": "pos" if i % 2 else "neg"}).encode() for i in range(count)]


RUN_TOML = """[training]
rank = 4
alpha = 8
lr = 0.005
batch_size = 4
max_length = 32
epochs = 1
checkpoint_every = 2
target_modules = ["q_proj", "v_proj"]
"""
"""A tiny causal-LM run config as `openledger train --config` reads it."""
