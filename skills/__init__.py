"""Skills: seeded, levelled problem generators with verifiers. Pure Python (no torch, no UI)."""
