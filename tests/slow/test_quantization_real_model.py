"""The quantization sweep on the real embedded model: the reference (its Q4_K_M dequantised to F16) and two
variants made by llama.cpp's quantiser load, their sizes match their types, the reference's KLD against itself is
0 and KLD grows as bits fall; accuracy runs are stored and paired with the reference's."""

import json

import pytest

from selfimprove.quant.settings import QuantSettings
from selfimprove.quant.sweep import quant_sweep

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    settings = QuantSettings(types="q8_0,q2_k", kld_tokens=192, context=96, problems=6, max_tokens=48, probe=True)
    return quant_sweep(None, tmp_path_factory.mktemp("quant"), settings, log=lambda line: None)


def test_variants_load_and_their_sizes_match_their_types(report):
    by_label = {v.label: v for v in report.variants}
    assert list(by_label) == ["reference", "embedded (shipped Q4_K_M)", "q8_0", "q2_k"]
    assert 15.5 < by_label["reference"].bits_per_weight < 16.5 and by_label["reference"].tensor_types.get("F16")
    assert 8.4 < by_label["q8_0"].bits_per_weight < 9.0 and by_label["q8_0"].tensor_types.get("Q8_0")
    # Gemma 3 270M's rows (640 wide) are not all whole 256-blocks: llama.cpp falls back to Q3_K / Q4_0 there.
    assert {"Q2_K", "Q3_K", "Q4_0"} & set(by_label["q2_k"].tensor_types)
    assert by_label["q2_k"].bytes < by_label["q8_0"].bytes
    assert all(v.speed["decode_tps"] > 0 and v.speed["peak_rss_bytes"] > v.bytes / 2 for v in report.variants)


def test_kld_is_zero_for_the_reference_and_grows_as_bits_fall(report):
    by_label = {v.label: v for v in report.variants}
    assert by_label["reference"].divergence["kl_mean"] == 0.0
    assert by_label["reference"].divergence["same_top_rate"] == 1.0
    # The shipped Q4_K_M is what the reference was dequantised from: the same weights, up to F16 rounding.
    assert by_label["embedded (shipped Q4_K_M)"].divergence["kl_mean"] < by_label["q8_0"].divergence["kl_mean"] + 0.01
    assert by_label["q8_0"].divergence["kl_mean"] < by_label["q2_k"].divergence["kl_mean"]
    assert by_label["q2_k"].divergence["same_top_rate"] < 1.0


def test_accuracy_is_stored_paired_and_the_sweep_resumes(report, tmp_path_factory):
    reference, q2 = report.variants[0], report.variants[-1]
    assert reference.accuracy is not None and reference.flips is None and q2.flips is not None
    flipped = len(q2.flips["correct_to_wrong"]) - len(q2.flips["wrong_to_correct"])
    assert flipped == round((reference.accuracy - q2.accuracy) * 6)
    work = report.reference.rsplit("/variants/", 1)[0]
    saved = json.loads(open(f"{work}/report.json").read())
    assert [v["label"] for v in saved["variants"]] == [v.label for v in report.variants]
    again = quant_sweep(None, work, QuantSettings(**report.settings), log=lambda line: None)
    assert [v.seconds for v in again.variants] == [v.seconds for v in report.variants]  # nothing measured again
