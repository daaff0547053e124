"""The training engine process. Never imports textual or rich."""
