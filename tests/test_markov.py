"""The Markov-chain baseline: counting, normalised probabilities, files, generation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.errors import ModelUnavailable
from engine.generate import STYLES, GenerationSettings, generate, load_markov
from engine.markov import MarkovChain, MarkovConfig
from engine.midi import TOKENIZER_FILE, encode, load_score, make_tokenizer, style_token
from tests.test_midi import small_piece

VOCAB = 32


def toy_chain(order: int = 3, min_count: int = 1) -> MarkovChain:
    sequences = [[1, 5, 6, 7, 5, 6, 7, 5, 6, 8], [2, 9, 9, 9, 10], [1, 5, 6, 7]]
    return MarkovChain.fit(sequences, MarkovConfig(order=order, min_count=min_count,
                                                   vocab_size=VOCAB))  # fmt: skip


def test_distributions_are_normalised_and_follow_the_counts() -> None:
    chain = toy_chain()
    for history in ([1], [1, 5], [1, 5, 6], [1, 5, 6, 7, 5, 6], [1, 30, 31]):
        probs = chain.distribution(history, 1)
        assert probs.shape == (VOCAB,)
        assert probs.sum() == pytest.approx(1.0)
    after_56 = chain.distribution([1, 7, 5, 6], 1)
    assert after_56.argmax() == 7  # "5 6" is followed by 7 three times, by 8 once
    assert after_56[7] > after_56[8] > after_56[20]
    assert chain.distribution([2, 9, 9], 2).argmax() == 9  # styles keep their own tables


def test_log_likelihood_prefers_seen_music() -> None:
    chain = toy_chain()
    seen, n = chain.log_likelihood([1, 5, 6, 7, 5, 6, 7])
    unseen, m = chain.log_likelihood([1, 20, 3, 11, 25, 4, 17])
    assert n == m == 6
    assert seen > unseen


def test_min_count_prunes_rare_contexts() -> None:
    pruned = toy_chain(order=4, min_count=3)
    full = toy_chain(order=4, min_count=1)
    assert len(pruned.tables[1][2].keys) < len(full.tables[1][2].keys)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    chain = toy_chain()
    path = tmp_path / "markov.npz"
    chain.save(path, vocab=[f"t{i}" for i in range(VOCAB)], meta={"metrics": {"x": 1}})
    again, header = MarkovChain.from_checkpoint(path)
    assert header["metrics"] == {"x": 1}
    np.testing.assert_allclose(again.distribution([1, 5, 6], 1), chain.distribution([1, 5, 6], 1))
    with pytest.raises(ModelUnavailable):
        MarkovChain.from_checkpoint(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a chain")
    with pytest.raises(ModelUnavailable):
        MarkovChain.from_checkpoint(tmp_path / "bad.npz")


def test_chain_generates_through_the_generation_front(tmp_path: Path) -> None:
    tokenizer = make_tokenizer(STYLES)
    tokenizer.save(tmp_path / TOKENIZER_FILE)
    ids = encode(tokenizer, load_score(small_piece()))
    sequences = [[tokenizer.vocab[style_token(s)], *ids] for s in ("folk", "rock")]
    chain = MarkovChain.fit(sequences, MarkovConfig(order=4, min_count=1,
                                                    vocab_size=len(tokenizer.vocab)))  # fmt: skip
    chain.save(tmp_path / "markov.npz", vocab=[tokenizer[i] for i in range(len(tokenizer.vocab))],
               meta={"style_tempos": {"folk": 100.0}})  # fmt: skip
    markov = load_markov(tmp_path / "markov.npz")
    assert markov.styles == ("folk", "rock")
    settings = GenerationSettings(style="folk", seconds=4.0, tempo=120.0, seed=1)
    first = generate(settings, markov, render=False)
    assert load_score(first.midi).note_num() > 0
    assert generate(settings, markov, render=False).midi == first.midi
