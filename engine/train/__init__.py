"""Training: chat rendering and loss masks, packing, the data stream, the curriculum,
and the optimizer step."""
