"""Functions the model may call (declared in the Live setup) and what they act on."""
