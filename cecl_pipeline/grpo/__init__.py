"""grpo stage (see DESIGN.md); filled in by later issues."""
