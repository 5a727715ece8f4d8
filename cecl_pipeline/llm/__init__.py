"""Pure JAX/Flax: Qwen3 model, HF→JAX conversion, tokenizer, KV-cache sampler."""
