"""selfimprove: make language models reason better and improve themselves, measured honestly.

The Python API (the CLI is a thin layer over it). Names are imported on first use, so
`import selfimprove` stays light and pulls in no model library:

    import selfimprove as si
    engine = si.LlamaCppEngine(model="model.gguf")            # or si.HFEngine(model="org/name"), si.OpenAICompatEngine
    task = si.QuestionsTask(items=[("What is 7 * 6?", 42), ("What is 15 + 27?", 42)])
    result = si.run(task, si.SelfConsistency(samples=8), engine)
    print(result.metrics.accuracy, result.metrics.maj_at_k, result.metrics.completion_tokens_per_problem)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # running and measuring
    "run": "selfimprove.api",
    "RunResult": "selfimprove.api",
    "report": "selfimprove.api",
    "RunStore": "selfimprove.runs.store",
    "RunMetrics": "selfimprove.runs.metrics",
    "RayExecutor": "selfimprove.runs.ray_executor",
    "RaySettings": "selfimprove.runs.ray_executor",
    # the values that flow between the parts
    "Problem": "selfimprove.core.types",
    "Solution": "selfimprove.core.types",
    "Sampling": "selfimprove.core.types",
    # engines
    "LlamaCppEngine": "selfimprove.engines.llama_cpp",
    "HFEngine": "selfimprove.engines.hf",
    "OpenAICompatEngine": "selfimprove.engines.openai_compat",
    "VLLMEngine": "selfimprove.engines.vllm",
    "EngineSpec": "selfimprove.engines.spec",
    # tasks
    "QuestionsTask": "selfimprove.tasks.questions",
    "ArithmeticTask": "selfimprove.tasks.arithmetic",
    "GSM8KTask": "selfimprove.tasks.gsm8k",
    "MathTask": "selfimprove.tasks.mathematics",
    "MBPPTask": "selfimprove.tasks.mbpp",
    "HumanEvalTask": "selfimprove.tasks.humaneval",
    "ProofWriterTask": "selfimprove.tasks.multiple_choice",
    "ProntoQATask": "selfimprove.tasks.multiple_choice",
    "FolioTask": "selfimprove.tasks.multiple_choice",
    "LogicalDeductionTask": "selfimprove.tasks.multiple_choice",
    # strategies
    "ChainOfThought": "selfimprove.strategies.cot",
    "SelfConsistency": "selfimprove.strategies.self_consistency",
    "AdaptiveConsistency": "selfimprove.strategies.adaptive_consistency",
    "WeightedConsistency": "selfimprove.strategies.weighted_consistency",
    "DeepConf": "selfimprove.strategies.deepconf",
    "SelfCorrect": "selfimprove.strategies.self_correct",
    "LeastToMost": "selfimprove.strategies.least_to_most",
    "LogicOfThought": "selfimprove.strategies.logic_of_thought",
    "TreeOfThoughts": "selfimprove.strategies.tree_of_thoughts",
    "BestOfN": "selfimprove.strategies.best_of_n",
    # reward models
    "RewardModel": "selfimprove.rewards.model",
    "RewardEnsemble": "selfimprove.rewards.model",
    "load_reward": "selfimprove.rewards.model",
    "ProcessRewardModel": "selfimprove.rewards.process",
    "Preference": "selfimprove.rewards.preferences",
    "load_preferences": "selfimprove.rewards.preferences",
    # training pipelines: one call each, a typed report back (the CLI commands of the same names)
    "testbed": "selfimprove.training.testbed",
    "TestbedSettings": "selfimprove.training.testbed",
    "TestbedEvaluation": "selfimprove.training.testbed",
    "lmsi": "selfimprove.training.lmsi",
    "LMSISettings": "selfimprove.training.lmsi",
    "LMSIEngines": "selfimprove.training.lmsi",
    "score": "selfimprove.training.score_pipeline",
    "ScoreSettings": "selfimprove.training.score",
    "ScorePipelineSettings": "selfimprove.training.score_pipeline",
    "reward_train": "selfimprove.training.reward_models",
    "RewardTrainSettings": "selfimprove.training.reward_models",
    "preferences_from_run": "selfimprove.training.reward_models",
    "process_reward_train": "selfimprove.training.process_rewards",
    "ProcessTrainSettings": "selfimprove.training.process_rewards",
    "step_examples_from_run": "selfimprove.training.process_rewards",
    "weak_to_strong": "selfimprove.training.weak_to_strong",
    "W2SSettings": "selfimprove.training.weak_to_strong",
    "W2SReport": "selfimprove.training.weak_to_strong",
    "quant_sweep": "selfimprove.quant.sweep",
    "QuantSettings": "selfimprove.quant.settings",
    "QuantReport": "selfimprove.quant.sweep",
    "memory": "selfimprove.training.memory",
    "MemorySettings": "selfimprove.training.memory",
    "MemoryReport": "selfimprove.training.memory",
    "MemoryTask": "selfimprove.tasks.memory",
    "synthetic_items": "selfimprove.tasks.memory",
    "poem_items": "selfimprove.tasks.memory",
    "score_recall": "selfimprove.runs.recall",
    "export_checkpoint": "selfimprove.training.gguf_export",
    "export_gguf": "selfimprove.training.gguf_export",
    "default_template": "selfimprove.training.gguf_export",
}
_MODULES = {
    "engines": "selfimprove.engines",
    "tasks": "selfimprove.tasks",
    "strategies": "selfimprove.strategies",
    "metrics": "selfimprove.runs.metrics",
}

__all__ = ["__version__", *_EXPORTS, *_MODULES]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'selfimprove' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
