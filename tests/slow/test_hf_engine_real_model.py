"""The `hf` engine on the embedded GGUF, dequantised by transformers: it scores text as llama.cpp does on
the same file, generates through the CLI, and reloads from its safetensors cache."""

import math
import subprocess
import sys

import pytest

from selfimprove.core.types import Sampling

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytestmark = pytest.mark.slow

TEXT = (
    "Question: Kate has 32 apples. She gives 4 to a friend and buys 10 more. How many apples does she have now?\n"
    "Answer: Kate starts with 32 apples. 32 - 4 = 28. 28 + 10 = 38. The answer is 38."
)


@pytest.fixture(scope="module")
def hf_engine():
    from selfimprove.engines.hf import HFEngine

    engine = HFEngine(model=None, device="cpu")
    yield engine
    engine.close()


def test_mean_token_loglik_matches_llama_cpp_on_the_same_gguf(hf_engine, embedded_model):
    import llama_cpp

    from selfimprove.engines.llama_cpp import teacher_forced_logprobs

    tokens = llama_cpp.Llama(model_path=str(embedded_model), vocab_only=True, verbose=False).tokenize(
        TEXT.encode(), add_bos=True
    )
    assert hf_engine.tokenizer(TEXT)["input_ids"] == tokens  # the converted tokenizer is the GGUF's
    hf = -sum(hf_engine.token_logprobs(tokens)) / (len(tokens) - 1)
    (scored,) = teacher_forced_logprobs(str(embedded_model), [tokens])
    ll = -sum(scored) / (len(tokens) - 1)
    print(f"mean NLL per token: transformers {hf:.4f}, llama.cpp {ll:.4f} over {len(tokens) - 1} tokens")
    assert math.isfinite(hf) and 0.5 < hf < 6
    assert abs(hf - ll) < 0.05 * ll


def test_cli_run_on_the_hf_engine(tmp_path, hf_engine):
    # hf_engine made the safetensors cache, so this process reloads it instead of dequantising again.
    result = subprocess.run(
        [sys.executable, "-m", "selfimprove.cli", "run", "--engine", "hf", "--task", "arithmetic", "--strategy",
         "self-consistency", "--samples", "2", "--limit", "2", "--max-tokens", "48", "--store",
         str(tmp_path / "s.sqlite"), "--no-progress"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "self-consistency accuracy" in " ".join(result.stdout.replace("│", " ").split())


def test_llama_cpp_sampled_logprobs_match_both_engines_teacher_forced(hf_engine, llama_engine):
    """The log-probabilities the llama.cpp engine reports while generating are the model's: llama.cpp scoring the
    finished text and transformers scoring it (the same GGUF, dequantised) agree with them token by token, up to
    the arithmetic of different batch shapes (one token per decode vs the whole text at once)."""
    import numpy as np

    from selfimprove.engines.llama_cpp import teacher_forced_logprobs

    prompt = "Question: Kate has 32 apples. She gives 4 away. How many are left?\nAnswer:"
    (completion,) = llama_engine.generate([prompt], 1, Sampling(max_tokens=40, logprobs=True, top_logprobs=3))[0]
    prompt_ids = hf_engine.tokenizer(prompt)["input_ids"]
    generated = hf_engine.tokenizer(completion.text, add_special_tokens=False)["input_ids"]
    assert len(generated) == completion.completion_tokens == len(completion.logprobs) == len(completion.top_logprobs)
    sampled = np.array(completion.logprobs)
    by_hf = np.array(hf_engine.token_logprobs(prompt_ids + generated)[len(prompt_ids) - 1 :])
    (by_llama,) = teacher_forced_logprobs(str(llama_engine.model_path), [prompt_ids + generated])
    by_llama = np.array(by_llama[len(prompt_ids) - 1 :])
    for name, other in (("transformers", by_hf), ("llama.cpp", by_llama)):
        gap = np.abs(sampled - other)
        print(f"sampled vs {name} teacher-forced: mean |gap| {gap.mean():.4f}, max {gap.max():.4f} nats")
        assert gap.mean() < 0.1 and gap.max() < 0.75
    greedy_tokens = [hf_engine.tokenizer.decode([t]) for t in generated]
    assert [top[0][0] for top in completion.top_logprobs] == greedy_tokens  # greedy drew the likeliest
