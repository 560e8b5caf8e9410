"""ModelFactory: deterministic LoRA training runs on Datanet versions."""
