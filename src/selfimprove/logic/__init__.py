"""Propositional logic for Logic-of-Thought: parse extracted theories, extend them by logic laws, verbalise."""
