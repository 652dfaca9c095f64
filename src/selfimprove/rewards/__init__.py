"""Reward models: scoring responses (batched), the pairwise and listwise ranking losses, ensembles and their
aggregators, and preference data. Training lives in `training/reward_models.py`; `best-of-n` uses the scorers."""
