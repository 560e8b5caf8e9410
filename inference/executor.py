"""One base model, many LoRA adapters in one batch (the BGMV/SGMV idea of Punica and S-LoRA).

`LoraPool` is the device tier: for every served module and layer, the A and B matrices of all
resident adapters are stacked in one tensor (slot 0 is all zeros = the base model alone; ranks
below the pool's rank are zero-padded, which changes nothing in the product). A batch row picks
its adapter by slot index, so a layer computes the whole batch's LoRA delta with two gathered
batched matmuls; there is no Python loop over adapters.

`Executor` runs a Llama-family transformers model with its own forward (the weights are the
model's own tensors, not copies) so that each request keeps its KV cache in a row of a
preallocated cache, requests join and leave between decode steps, and the last hidden state is
available for activation commitments. We write this forward by hand because transformers'
cache classes assume one batch that starts together; the math (RMSNorm, RoPE, GQA attention,
SiLU MLP) reuses transformers' modules and is checked against peft's logits in the tests.
"""
from __future__ import annotations

import collections

import torch
import torch.nn.functional as F
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from inference.adapters import BaseSpec, LoadedAdapter
from inference.errors import BadRequest

ATTN, MLP = ("q_proj", "k_proj", "v_proj", "o_proj"), ("gate_proj", "up_proj", "down_proj")


class LoraPool:
    """Stacked LoRA weights of up to `slots - 1` adapters, LRU-evicted when not in use."""

    def __init__(self, base: BaseSpec, targets: tuple[str, ...], max_rank: int, slots: int,
                 dtype: torch.dtype, device: torch.device | str):
        if slots < 2:
            raise ValueError("a LoRA pool needs at least 2 slots (slot 0 is the base model)")
        self.targets, self.max_rank, self.slots = tuple(targets), max_rank, slots
        # A[m]: [layers, slots, r, in]; B[m]: [layers, slots, out, r]
        self.A = {m: torch.zeros(base.num_layers, slots, max_rank, base.modules[m][0], dtype=dtype, device=device)
                  for m in self.targets}
        self.B = {m: torch.zeros(base.num_layers, slots, base.modules[m][1], max_rank, dtype=dtype, device=device)
                  for m in self.targets}
        self._lru: collections.OrderedDict[str, int] = collections.OrderedDict()
        self._free = list(range(slots - 1, 0, -1))
        self._pins = [0] * slots
        self.uploads = 0

    def slot_of(self, adapter_id: str) -> int | None:
        return self._lru.get(adapter_id)

    def can_acquire(self, adapter_id: str | None) -> bool:
        return (adapter_id is None or adapter_id in self._lru or bool(self._free)
                or any(self._pins[s] == 0 for s in self._lru.values()))

    def acquire(self, adapter: LoadedAdapter | None) -> int:
        """Pin a slot holding `adapter` (uploading it, evicting the LRU unpinned one if needed)."""
        if adapter is None:
            return 0
        slot = self._lru.get(adapter.adapter_id)
        if slot is None:
            if self._free:
                slot = self._free.pop()
            else:
                victim = next((a for a, s in self._lru.items() if self._pins[s] == 0), None)
                if victim is None:
                    raise RuntimeError("every LoRA slot is pinned by a running request")
                slot = self._lru.pop(victim)
            self._upload(slot, adapter)
            self._lru[adapter.adapter_id] = slot
        self._lru.move_to_end(adapter.adapter_id)
        self._pins[slot] += 1
        return slot

    def release(self, slot: int) -> None:
        if slot:
            self._pins[slot] -= 1

    def _upload(self, slot: int, adapter: LoadedAdapter) -> None:
        for m in self.targets:
            self.A[m][:, slot].zero_()
            self.B[m][:, slot].zero_()
        r = adapter.rank
        for (layer, m), (a, b) in adapter.weights.items():
            self.A[m][layer, slot, :r].copy_(a)
            self.B[m][layer, slot, :, :r].copy_(b)
        self.uploads += 1

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.A.values(), *self.B.values()))


class Executor:
    """Batched forward of a Llama model with per-row KV caches and per-row LoRA slots."""

    def __init__(self, model, pool: LoraPool, max_batch: int, max_seq_len: int):
        cfg = model.config
        self.model, self.pool = model, pool
        self.layers = model.model.layers
        self.dtype = model.model.embed_tokens.weight.dtype
        self.device = model.model.embed_tokens.weight.device
        self.vocab_size = cfg.vocab_size
        self.num_heads, self.num_kv = cfg.num_attention_heads, cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.max_batch, self.max_seq_len = max_batch, max_seq_len
        shape = (len(self.layers), max_batch, self.num_kv, max_seq_len, self.head_dim)
        self.k_cache = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self.v_cache = torch.zeros(shape, dtype=self.dtype, device=self.device)

    def _linear(self, module: torch.nn.Linear, name: str, layer: int, x: torch.Tensor,
                slots: torch.Tensor | None) -> torch.Tensor:
        out = module(x)
        if slots is not None and name in self.pool.targets:
            a = self.pool.A[name][layer].index_select(0, slots)  # [B, r, in]
            b = self.pool.B[name][layer].index_select(0, slots)  # [B, out, r]
            out = out + torch.bmm(torch.bmm(x, a.transpose(1, 2)), b.transpose(1, 2))
        return out

    @torch.inference_mode()
    def forward(self, tokens: torch.Tensor, row0: int, start: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        """Run `tokens` [B, T] for cache rows row0..row0+B-1 whose first token sits at position
        `start` [B]; write their K/V to the cache and return the final-norm hidden states [B, T, h].
        Right-padded prompts are fine: causal masking keeps padding out of real positions, and a
        later token overwrites a padded slot before any query can see it."""
        bsz, seq = tokens.shape
        if row0 + bsz > self.max_batch:
            raise BadRequest(f"batch rows {row0}..{row0 + bsz - 1} exceed max_batch {self.max_batch}")
        pos = start[:, None] + torch.arange(seq, device=self.device)  # [B, T]
        kv_len = int(pos.max()) + 1
        if kv_len > self.max_seq_len:
            raise BadRequest(f"sequence length {kv_len} exceeds the executor's max_seq_len {self.max_seq_len}")
        lora_slots = slots if bool((slots != 0).any()) else None
        x = self.model.model.embed_tokens(tokens)  # [B, T, h]
        cos, sin = self.model.model.rotary_emb(x, pos)
        mask = (torch.arange(kv_len, device=self.device)[None, None, :] <= pos[:, :, None])[:, None]  # [B,1,T,K]
        rows = torch.arange(bsz, device=self.device)[:, None]
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            hs = layer.input_layernorm(x)
            q = self._linear(attn.q_proj, "q_proj", i, hs, lora_slots).view(bsz, seq, self.num_heads, self.head_dim)
            k = self._linear(attn.k_proj, "k_proj", i, hs, lora_slots).view(bsz, seq, self.num_kv, self.head_dim)
            v = self._linear(attn.v_proj, "v_proj", i, hs, lora_slots).view(bsz, seq, self.num_kv, self.head_dim)
            q, k = apply_rotary_pos_emb(q.transpose(1, 2), k.transpose(1, 2), cos, sin)  # [B, H, T, d]
            kc = self.k_cache[i, row0:row0 + bsz]  # [B, kv, S, d] (a view)
            vc = self.v_cache[i, row0:row0 + bsz]
            kc[rows, :, pos] = k.transpose(1, 2)
            vc[rows, :, pos] = v
            o = F.scaled_dot_product_attention(q, kc[:, :, :kv_len], vc[:, :, :kv_len], attn_mask=mask,
                                               enable_gqa=self.num_kv != self.num_heads)
            o = o.transpose(1, 2).reshape(bsz, seq, self.num_heads * self.head_dim)
            x = x + self._linear(attn.o_proj, "o_proj", i, o, lora_slots)
            hs = layer.post_attention_layernorm(x)
            mlp = layer.mlp
            gated = mlp.act_fn(self._linear(mlp.gate_proj, "gate_proj", i, hs, lora_slots))
            x = x + self._linear(mlp.down_proj, "down_proj", i,
                                 gated * self._linear(mlp.up_proj, "up_proj", i, hs, lora_slots), lora_slots)
        return self.model.model.norm(x)

    @torch.inference_mode()
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.model.lm_head(hidden).float()

    def move_row(self, src: int, dst: int, length: int) -> None:
        """Copy one request's cache row (used to keep active rows contiguous)."""
        self.k_cache[:, dst, :, :length] = self.k_cache[:, src, :, :length]
        self.v_cache[:, dst, :, :length] = self.v_cache[:, src, :, :length]
