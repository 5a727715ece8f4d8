"""Prompt environments: what each env asks (its prompt), how it must be answered, and how answers are read.

``registry.ENVS`` is the one place env names live; prompts, training, sampling, debug and the CLI
all look envs up there.
"""
