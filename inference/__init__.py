"""OpenLoRA: many LoRA adapters on one base model, with verifiable activation commitments."""
