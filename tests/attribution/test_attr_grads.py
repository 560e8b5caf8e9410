"""Per-example LoRA gradients from hooks equal a per-example autograd loop, on real peft models."""
import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import BertConfig, BertForSequenceClassification

from attribution.errors import AttributionError
from attribution.grads import lora_blocks, per_example_grads


def _loop(model, blocks, loss_fn, rows):
    out = []
    for row in rows:
        loss = loss_fn(model, row).sum()
        grads = torch.autograd.grad(loss, [m.weight for b in blocks for m in (b.lora_a, b.lora_b)])
        out.append([torch.cat([grads[2 * i].flatten(), grads[2 * i + 1].flatten()]) for i in range(len(blocks))])
    return [torch.stack([r[i] for r in out]) for i in range(len(blocks))]


def test_hooks_match_loop_on_mlp(tiny):
    blocks = lora_blocks(tiny.model)
    x, y = tiny.x[:7], tiny.y[:7]
    loss = lambda m, b: torch.nn.functional.cross_entropy(m(b[0]), b[1], reduction="none")  # noqa: E731
    fast = per_example_grads(tiny.model, blocks, loss, (x, y))
    slow = _loop(tiny.model, blocks, loss, [(x[i : i + 1], y[i : i + 1]) for i in range(7)])
    assert [f.shape for f in fast] == [(7, b.size) for b in blocks]
    for f, s in zip(fast, slow):
        torch.testing.assert_close(f, s, rtol=1e-5, atol=1e-6)


def test_hooks_match_loop_on_transformer_with_padding():
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, num_labels=2)
    model = get_peft_model(BertForSequenceClassification(cfg), LoraConfig(r=2, target_modules=["query", "value"], init_lora_weights=False))
    model.eval()
    ids = torch.randint(1, 50, (4, 6))
    mask = torch.ones_like(ids)
    mask[1, 4:] = 0
    mask[3, 2:] = 0
    labels = torch.tensor([0, 1, 1, 0])

    def loss(m, b):
        return torch.nn.functional.cross_entropy(m(input_ids=b[0], attention_mask=b[1]).logits, b[2], reduction="none")

    blocks = lora_blocks(model)
    assert len(blocks) == 4
    fast = per_example_grads(model, blocks, loss, (ids, mask, labels))
    slow = _loop(model, blocks, loss, [(ids[i : i + 1], mask[i : i + 1], labels[i : i + 1]) for i in range(4)])
    for f, s in zip(fast, slow):
        torch.testing.assert_close(f, s, rtol=1e-4, atol=1e-6)


def test_model_without_lora_is_refused():
    with pytest.raises(AttributionError, match="no active LoRA"):
        lora_blocks(torch.nn.Linear(3, 2))


def test_loss_must_be_per_example(tiny):
    with pytest.raises(AttributionError, match="per-example losses"):
        per_example_grads(tiny.model, lora_blocks(tiny.model), lambda m, b: m(b).sum(), tiny.x[:3])
