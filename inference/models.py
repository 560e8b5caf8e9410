"""Test models and adapters for OpenLoRA (nothing downloads at run time).

`tiny_llama` is a random-init Llama with grouped-query attention (4 query, 2 KV heads), which
`training.load_base("tiny-llama")` (4 KV heads) does not exercise; real bases (SmolLM2, or the
models adapters were trained on) come from `training.load_base`.
"""
from __future__ import annotations

import pathlib

import torch
from transformers import LlamaConfig, LlamaForCausalLM

# Token ids of the tiny model's specials: inside the vocab, as transformers requires.
TINY_PAD, TINY_BOS, TINY_EOS = 0, 1, 2


def tiny_llama(seed: int = 0, vocab_size: int = 256, hidden_size: int = 64, layers: int = 2,
               dtype: torch.dtype = torch.float32) -> LlamaForCausalLM:
    """A randomly initialised Llama (GQA: 4 query heads, 2 KV heads), identical for one seed."""
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=512, pad_token_id=TINY_PAD, bos_token_id=TINY_BOS,
        eos_token_id=TINY_EOS, tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model.to(dtype).eval()


def random_adapter(model, out_dir: str | pathlib.Path, rank: int = 8, seed: int = 0,
                   targets: tuple[str, ...] = ("q_proj", "v_proj"), alpha: int | None = None,
                   scale: float = 1.0) -> pathlib.Path:
    """Save a peft LoRA adapter with random (non-zero) A and B for `model`'s architecture.

    peft's default init makes B = 0 (a no-op adapter); tests and benchmarks need adapters that
    change outputs, so both matrices are drawn from N(0, scale / sqrt(fan_in)).
    """
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    from safetensors.torch import save_file

    config = LoraConfig(r=rank, lora_alpha=alpha or 2 * rank, target_modules=list(targets),
                        lora_dropout=0.0, init_lora_weights=False)
    base_sd = {k: v for k, v in model.state_dict().items()}
    peft_model = get_peft_model(model, config)
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, tensor in get_peft_model_state_dict(peft_model).items():
        fan_in = tensor.shape[1]
        state[key] = (torch.randn(tensor.shape, generator=gen) * scale / fan_in ** 0.5).to(torch.float32)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    peft_model.peft_config["default"].save_pretrained(str(out))
    save_file(state, str(out / "adapter_model.safetensors"))
    # get_peft_model wrapped the base in place: undo it so the caller's model stays plain.
    peft_model.unload()
    model.load_state_dict(base_sd)
    return out
