"""Per-example gradients of LoRA parameters from one batched forward and backward pass.

torch.func's vmap cannot trace Hugging Face models (their mask helpers branch on tensor
values), and a per-example loop costs a pass per row. A LoRA update is two bias-free Linear
maps, whose per-example weight gradient is exactly sum_t grad_out[t] (x) input[t] (the
Opacus "grad sample" identity), so hooks on the LoRA Linear modules give every row's gradient
at the cost of one ordinary training step. We hand-write these ~30 lines rather than pull in
Opacus, whose GradSampleModule wraps and validates the whole model.
"""
from collections.abc import Callable
from dataclasses import dataclass

import torch
from peft.tuners.lora import LoraLayer

from attribution.errors import AttributionError

# per-example losses, shape (n,), for a batch of n rows
LossFn = Callable[[torch.nn.Module, object], torch.Tensor]


@dataclass(frozen=True)
class LoRABlock:
    """One adapted module: its A and B matrices form one block of the gradient (and of DataInf)."""

    name: str
    lora_a: torch.nn.Linear
    lora_b: torch.nn.Linear

    @property
    def size(self) -> int:
        return self.lora_a.weight.numel() + self.lora_b.weight.numel()


def lora_blocks(model: torch.nn.Module) -> list[LoRABlock]:
    """The active LoRA adapters of a peft model, in module order."""
    blocks = []
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer):
            for adapter in module.active_adapters:
                if adapter in module.lora_A:
                    blocks.append(LoRABlock(f"{name}.{adapter}", module.lora_A[adapter], module.lora_B[adapter]))
    if not blocks:
        raise AttributionError("model has no active LoRA adapter: nothing to attribute over")
    return blocks


def per_example_grads(model: torch.nn.Module, blocks: list[LoRABlock], loss_fn: LossFn, batch: object) -> list[torch.Tensor]:
    """Gradient of each row's loss w.r.t. each block's LoRA weights: one (n, block.size) per block."""
    linears = [m for b in blocks for m in (b.lora_a, b.lora_b)]
    inputs: dict[torch.nn.Module, list[torch.Tensor]] = {m: [] for m in linears}
    out_grads: dict[torch.nn.Module, list[torch.Tensor]] = {m: [] for m in linears}

    def capture(module, args, output):
        inputs[module].append(args[0].detach())
        output.register_hook(lambda g: out_grads[module].append(g.detach()))

    handles = [m.register_forward_hook(capture) for m in linears]
    frozen = [m.weight for m in linears if not m.weight.requires_grad]  # e.g. an adapter loaded for inference
    for w in frozen:
        w.requires_grad_(True)
    try:
        losses = loss_fn(model, batch)
        if losses.dim() != 1:
            raise AttributionError(f"loss function must return per-example losses of shape (n,), got {tuple(losses.shape)}")
        torch.autograd.grad(losses.sum(), [m.weight for m in linears])
    finally:
        for h in handles:
            h.remove()
        for w in frozen:
            w.requires_grad_(False)
    n = losses.shape[0]
    result = []
    for block in blocks:
        parts = []
        for m in (block.lora_a, block.lora_b):
            # backward visits uses in reverse order: pair each input with its own output grad
            pairs = zip(inputs[m], reversed(out_grads[m]), strict=True)
            g = sum(torch.einsum("nto,nti->noi", go.reshape(n, -1, go.shape[-1]), x.reshape(n, -1, x.shape[-1])) for x, go in pairs)
            parts.append(g.reshape(n, -1))
        result.append(torch.cat(parts, dim=1))
    return result
