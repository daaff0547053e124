"""The Textual game. Never imports torch, transformers, peft or bitsandbytes: the first
frame must not wait for them (tests/process/test_boundaries.py checks it)."""
