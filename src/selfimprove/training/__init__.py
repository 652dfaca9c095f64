"""Training: self-training data (LMSI), supervised fine-tuning with LoRA, the testbed model."""
