"""The hero's model: loading and modes, the hatchling, export, GPU telemetry, memory."""
