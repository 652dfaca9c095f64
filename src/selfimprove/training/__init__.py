"""Training: LMSI self-training, SCoRe multi-turn RL, supervised fine-tuning with LoRA (TRL/PEFT), the testbed
model, GGUF export."""
