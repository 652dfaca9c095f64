"""Quantization sweeps: what bits and method cost a model, measured against its own unquantised reference."""
