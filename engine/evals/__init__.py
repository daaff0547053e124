"""Evaluation: validation loss and skill accuracy by batched greedy generation."""
