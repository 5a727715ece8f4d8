"""The embedded default: synthetic panel and macro data, the tokenizer corpus, the random-initialised Qwen3 (depends on panel, envs and llm)."""
