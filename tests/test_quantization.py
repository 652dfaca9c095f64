"""Quantization sweep: the streamed KL divergence against the full one, its summary kept and read back, and the
sweep's settings. The sweep itself on the real embedded model is in tests/slow/test_quantization_real_model.py."""

import numpy as np
import pytest

from selfimprove.quant.divergence import (
    ReferenceSummary,
    compare,
    divergence_statistics,
    exact_kl,
    log_softmax,
    summarise,
)


def _logits(seed: int, positions: int = 40, vocab: int = 50, scale: float = 3.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(positions, vocab)) * scale


def test_streamed_kl_equals_the_full_vocabulary_one_when_k_covers_it():
    reference, variant = log_softmax(_logits(0)), log_softmax(_logits(0) + 0.3 * _logits(1, scale=1))
    next_ids = np.random.default_rng(2).integers(0, 50, size=40)
    streamed = compare(summarise(reference, next_ids, k=50), variant).kl
    np.testing.assert_allclose(streamed, exact_kl(reference, variant), rtol=1e-10, atol=1e-12)


def test_streamed_kl_with_a_tail_is_a_lower_bound_and_close_for_peaked_distributions():
    reference, variant = log_softmax(_logits(0)), log_softmax(_logits(0) + 0.3 * _logits(1, scale=1))
    next_ids = np.zeros(40, dtype=int)
    full = exact_kl(reference, variant)
    streamed = compare(summarise(reference, next_ids, k=8), variant).kl
    assert np.all(streamed <= full + 1e-12)
    assert streamed.sum() > 0.8 * full.sum()  # scale 3: the top 8 of 50 carry most of the mass


def test_the_reference_against_itself_is_zero_and_noise_raises_kl():
    logits = _logits(3)
    reference = log_softmax(logits)
    next_ids = np.random.default_rng(4).integers(0, 50, size=40)
    summary = summarise(reference, next_ids, k=10)
    itself = compare(summary, reference)
    assert np.all(itself.kl == 0.0) and itself.same_top.all()
    means = [compare(summary, log_softmax(logits + s * _logits(5, scale=1))).kl.mean() for s in (0.05, 0.2, 0.8)]
    assert means[0] < means[1] < means[2]
    stats = divergence_statistics(summary, [itself])
    assert stats.kl_mean == 0.0 and stats.perplexity_ratio == pytest.approx(1.0) and stats.same_top_rate == 1.0


def test_summary_round_trips_and_comparisons_can_come_in_chunks(tmp_path):
    reference, variant = log_softmax(_logits(6)), log_softmax(_logits(6) + _logits(7, scale=0.5))
    next_ids = np.arange(40) % 50
    summary = summarise(reference, next_ids, k=12)
    summary.save(str(tmp_path / "ref.npz"))
    loaded = ReferenceSummary.load(str(tmp_path / "ref.npz"))
    whole = compare(loaded, variant).kl
    chunks = np.concatenate([compare(loaded, variant[i : i + 16], offset=i).kl for i in range(0, 40, 16)])
    np.testing.assert_array_equal(whole, chunks)
    halves = ReferenceSummary.concatenate([summarise(reference[:20], next_ids[:20], 12),
                                           summarise(reference[20:], next_ids[20:], 12)])  # fmt: skip
    np.testing.assert_array_equal(halves.top_ids, summary.top_ids)
    nll = -variant[np.arange(40), next_ids].mean()
    assert divergence_statistics(summary, [compare(summary, variant)]).perplexity == pytest.approx(np.exp(nll))


def test_windows_cover_the_positions_asked_for_each_opened_with_bos():
    from selfimprove.quant.measure import windows

    found = windows(list(range(100, 200)), context=10, limit=25, bos=1)
    assert all(w[0] == 1 and len(w) <= 10 for w in found)
    assert sum(len(w) - 1 for w in found) == 25
    assert [t for w in found for t in w[1:]] == list(range(100, 125))  # consecutive, nothing skipped or repeated


def test_settings_and_text_files_fail_with_the_flag_or_line(tmp_path):
    from selfimprove.core.errors import ConfigError
    from selfimprove.quant.measure import read_text
    from selfimprove.quant.settings import QuantSettings

    with pytest.raises(ConfigError, match="--types: unknown GGUF type.*q9_k"):
        QuantSettings(types="q8_0,q9_k")
    with pytest.raises(ConfigError, match="--top-k must be at least 2"):
        QuantSettings(top_k=1)
    assert QuantSettings(types="Q8_0, q4_k_m,q8_0").type_list == ["q8_0", "q4_k_m"]
    bad = tmp_path / "text.jsonl"
    bad.write_text('{"title": "A", "lines": ["one", "two"]}\nnot json\n')
    with pytest.raises(ConfigError, match=r"text.jsonl:2: not JSON"):
        read_text(str(bad))
    bad.write_text('{"title": "A", "lines": ["one", "two"]}\n')
    assert read_text(str(bad)) == "A\none\ntwo"
    assert "Question:" in read_text(None)


def test_weight_only_sweep_of_a_tiny_checkpoint(tmp_path):
    pytest.importorskip("torchao")
    from selfimprove.quant.settings import QuantSettings
    from selfimprove.quant.sweep import quant_sweep
    from tiny_models import tiny_llama

    folder = tmp_path / "tiny"
    model, tokenizer = tiny_llama(seed=1, hidden=64)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    settings = QuantSettings(kld_tokens=96, context=48, problems=4, max_tokens=6, shots=0, batch_size=4, probe=False)
    report = quant_sweep(str(folder), tmp_path / "sweep", settings, log=lambda line: None)
    by_label = {v.label: v for v in report.variants}
    assert list(by_label) == ["reference", "int8", "int4"]
    assert by_label["reference"].divergence["kl_mean"] == 0.0 and by_label["reference"].bits_per_weight > 31
    assert 0 < by_label["int8"].divergence["kl_mean"] < by_label["int4"].divergence["kl_mean"]
    assert by_label["int8"].bytes < by_label["reference"].bytes
    assert all(v.accuracy is not None for v in report.variants) and by_label["int4"].flips is not None
    assert (tmp_path / "sweep" / "report.html").read_text().count("<tr>") >= 4
    from selfimprove.reports.quantization import load_report, render_family

    again = load_report(str(tmp_path / "sweep"))
    assert [v.label for v in again.variants] == ["reference", "int8", "int4"]
    page = render_family([again])
    assert "accuracy vs bytes" in page and page.count("<tr><td>") == 3
