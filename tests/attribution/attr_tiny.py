"""A tiny LoRA classifier on a synthetic labelled set with one planted mislabel (real torch + peft)."""
import copy
import dataclasses

import numpy as np
import torch
from eth_utils import keccak
from peft import LoraConfig, get_peft_model

from attribution import Contribution

N_ROWS = 60
DIM = 8
PLANTED = 17  # row whose label is flipped


def per_example_loss(model, batch):
    x, y = batch
    return torch.nn.functional.cross_entropy(model(x), y, reduction="none")


def encode(prompt: bytes, output: bytes):
    """Query = features (float32 bytes) as prompt, the predicted label as output."""
    x = torch.from_numpy(np.frombuffer(prompt, dtype="<f4").copy())[None]
    return x, torch.tensor([int(output)])


@dataclasses.dataclass
class Tiny:
    model: torch.nn.Module
    x: torch.Tensor
    y: torch.Tensor
    contributions: list
    batches: list
    checkpoints: list = dataclasses.field(default_factory=list)

    def query(self, row: int) -> tuple[bytes, bytes]:
        return self.x[row].numpy().astype("<f4").tobytes(), str(int(self.y[row])).encode()


def contribution(i: int, owner: int | None = None) -> Contribution:
    owner = i if owner is None else owner
    return Contribution(keccak(b"row %d" % i), keccak(b"owner %d" % owner)[:20])


def make_tiny(x: torch.Tensor, y: torch.Tensor, owners=None, steps: int = 150, every: int = 0) -> Tiny:
    """Train the tiny model; with `every`, `checkpoints` holds a copy of it every `every` steps
    (the last is the final model), as ModelFactory records them (for ensemble-v1)."""
    torch.manual_seed(0)
    base = torch.nn.Sequential(torch.nn.Linear(DIM, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["0", "2"], init_lora_weights=False))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.03)
    checkpoints = []
    for step in range(1, steps + 1):
        opt.zero_grad()
        per_example_loss(model, (x, y)).mean().backward()
        opt.step()
        if every and step % every == 0:
            checkpoints.append(copy.deepcopy(model).eval())
    model.eval()
    owners = owners or list(range(len(x)))
    contributions = [contribution(i, owners[i]) for i in range(len(x))]
    batches = [(x[i : i + 16], y[i : i + 16]) for i in range(0, len(x), 16)]
    return Tiny(model, x, y, contributions, batches, checkpoints)


def synthetic(n: int = N_ROWS, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    centres = torch.randn(2, DIM, generator=gen) * 1.5
    x = centres[y] + torch.randn(n, DIM, generator=gen)
    return x, y


def tampered(proof, params) -> dict:
    """The proof as a dishonest attributor might change it, by kind: weights moved between the top
    two shares, their contributions swapped, another index root, another seed, other `params`."""
    a, b, *rest = proof.shares
    return {
        "weights": dataclasses.replace(proof, shares=(dataclasses.replace(a, ppm=a.ppm - 7),
                                                      dataclasses.replace(b, ppm=b.ppm + 7), *rest)),
        "swapped": dataclasses.replace(proof, shares=(
            dataclasses.replace(a, contribution_id=b.contribution_id, contributor=b.contributor),
            dataclasses.replace(b, contribution_id=a.contribution_id, contributor=a.contributor), *rest)),
        "root": dataclasses.replace(proof, index_root=b"\x09" * 32),
        "seed": dataclasses.replace(proof, seed=proof.seed + 1),
        "params": dataclasses.replace(proof, params=params),
    }
