"""Few-shot chain-of-thought prompts for base models (no chat template needed).

Format, one block per exemplar, then the question with an open answer:

    Question: <question>
    Answer: <worked solution ending in "The answer is N.">

The blank line between blocks and the stop string "\\nQuestion:" end a base model's answer.
"""

from __future__ import annotations

from collections.abc import Sequence

FEW_SHOT_STOP = ("\nQuestion:", "\n\n\n")


def few_shot_prompt(exemplars: Sequence[tuple[str, str]], question: str) -> str:
    blocks = [f"Question: {q}\nAnswer: {a}\n" for q, a in exemplars]
    blocks.append(f"Question: {question}\nAnswer:")
    return "\n".join(blocks)
