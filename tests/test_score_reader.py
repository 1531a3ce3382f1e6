"""The staff reader network, its checkpoint, CTC decoding and the whole page reading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import InvalidScore, ModelUnavailable, NoStaves
from engine.models.omr import ReaderConfig, StaffReader, _Recurrence
from engine.score.assemble import midi_bytes, musicxml_bytes
from engine.score.encoding import vocabulary
from engine.score.reader import CHECKPOINT, greedy_decode, load_reader, read_staves
from engine.score.reading import parse_tokens, read_score, with_staff_tokens
from engine.score.staves import STAFF_HEIGHT_PX
from tests.score_pages import engraved_page, image_bytes, melody_score, pdf_bytes

TINY = dict(channels=(4, 4, 8, 8), hidden=8, layers=1)


@pytest.fixture
def tiny_reader(tmp_path: Path):
    torch.manual_seed(0)
    model = StaffReader(ReaderConfig(vocab_size=len(vocabulary()), **TINY))
    path = tmp_path / "reader.pt"
    model.save(path, vocab=vocabulary(), metrics={"test": True})
    return load_reader(path)


@pytest.mark.parametrize("variant", [
    dict(residual=True, fusion=True, recurrent="sru"),
    dict(residual=False, fusion=False, recurrent="lstm"),
    dict(residual=True, fusion=False, recurrent="sru"),
    dict(residual=True, fusion=True, recurrent="lstm"),
])
def test_every_variant_gives_a_column_distribution(variant: dict) -> None:
    model = StaffReader(ReaderConfig(vocab_size=10, channels=(4, 4, 8, 8), hidden=8,
                                     **variant)).eval()
    out = model(torch.rand(2, 1, STAFF_HEIGHT_PX, 101))
    assert out.shape == (25, 2, 11)
    assert torch.allclose(out.exp().sum(-1), torch.ones(25, 2), atol=1e-5)


def test_the_sru_recurrence_gradient_is_right() -> None:
    forget = torch.rand(6, 2, 3, dtype=torch.double, requires_grad=True)
    candidate = torch.randn(6, 2, 3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(_Recurrence.apply, (forget, candidate))


def test_a_checkpoint_rebuilds_the_same_reader(tiny_reader, tmp_path: Path) -> None:
    images = [np.full((STAFF_HEIGHT_PX, 80), 255, np.uint8)]
    again = load_reader(tmp_path / "reader.pt")
    assert again.vocab == tuple(vocabulary())
    assert again.metrics == {"test": True}
    first = read_staves(images, tiny_reader)[0]
    assert [s.token for s in first] == [s.token for s in read_staves(images, again)[0]]


def test_a_missing_or_broken_checkpoint_says_so(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="missing"):
        load_reader(tmp_path / "none.pt")
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelUnavailable, match="could not be read"):
        load_reader(tmp_path / "broken.pt")


def test_greedy_decoding_merges_repeats_and_keeps_the_best_confidence() -> None:
    vocab = ["A", "B"]
    columns = [(0, 0.9), (1, 0.6), (1, 0.8), (0, 0.9), (1, 0.7), (2, 0.95), (0, 0.5)]
    probs = torch.full((len(columns) + 2, 3), 0.01)
    for t, (index, p) in enumerate(columns):
        probs[t, index] = p
    symbols = greedy_decode(probs.log(), len(columns), vocab, grammar=False)
    assert [s.token for s in symbols] == ["A", "A", "B"]
    assert [round(s.confidence, 2) for s in symbols] == [0.8, 0.7, 0.95]
    assert 0 < symbols[0].column < symbols[1].column < symbols[2].column < 1


def test_the_grammar_keeps_durations_after_pitches() -> None:
    vocab = ["C4", "quarter", "|", "tie"]
    rows = [  # blank, C4, quarter, |, tie
        [0.05, 0.9, 0.02, 0.02, 0.01],  # C4
        [0.35, 0.02, 0.02, 0.6, 0.01],  # a bar line inside the note: the blank is next best
        [0.05, 0.02, 0.9, 0.02, 0.01],  # its duration
        [0.05, 0.02, 0.02, 0.3, 0.6],  # a tie, after a duration
        [0.05, 0.02, 0.02, 0.9, 0.01],  # the bar line
    ]
    log_probs = torch.tensor(rows).log()
    plain = [s.token for s in greedy_decode(log_probs, 5, vocab, grammar=False)]
    kept = [s.token for s in greedy_decode(log_probs, 5, vocab)]
    assert plain == ["C4", "|", "quarter", "tie", "|"]
    assert kept == ["C4", "quarter", "tie", "|"]
    # A duration with no pitch before it takes the next best symbol that may start a staff.
    lone = torch.tensor([[0.1, 0.3, 0.6, 0.0, 0.0]]).clamp_min(1e-6).log()
    assert [s.token for s in greedy_decode(lone, 1, vocab)] == ["C4"]


def test_a_page_is_read_into_a_score_with_every_part(tiny_reader) -> None:
    page, boxes = engraved_page(melody_score(parts=2, bars=8))
    reading = read_score(image_bytes(page), tiny_reader, name="duet.png")
    summary = reading.summary()
    assert summary["pages"] == 1
    assert summary["staves"] == len(boxes)
    assert summary["parts"] == 2
    assert summary["systems"] == len(boxes) // 2
    assert 0 <= summary["mean_confidence"] <= 1
    assert len(reading.score.parts) == 2
    assert musicxml_bytes(reading.score).startswith(b"<?xml")
    assert midi_bytes(reading.score)[:4] == b"MThd"


def test_a_two_page_pdf_is_one_score(tiny_reader) -> None:
    page, boxes = engraved_page(melody_score(parts=1, bars=8))
    reading = read_score(pdf_bytes([page, page]), tiny_reader, name="book.pdf")
    assert len(reading.pages) == 2
    assert len(reading.staves) == 2 * len(boxes)
    assert reading.parts == 1


def test_pages_without_staves_are_refused(tiny_reader) -> None:
    blank = np.full((800, 600), 255, np.uint8)
    with pytest.raises(NoStaves, match="No staff of five lines"):
        read_score(image_bytes(blank), tiny_reader, name="blank.png")
    photo = np.random.default_rng(0).integers(0, 256, (600, 800)).astype(np.uint8)
    with pytest.raises(NoStaves):
        read_score(image_bytes(photo, "JPEG"), tiny_reader, name="cat.jpg")


def test_a_correction_replaces_one_staff_and_rebuilds_the_score(tiny_reader) -> None:
    page, _ = engraved_page(melody_score(parts=1, bars=4))
    reading = read_score(image_bytes(page), tiny_reader, name="tune.png")
    typed = parse_tokens("clef:G2 time:4/4\nC4 quarter D4 quarter E4 half |\nG4 E4 C5 whole |]")
    corrected = with_staff_tokens(reading, 0, typed)
    assert corrected.staves[0].tokens == typed
    assert all(s.confidence == 1.0 for s in corrected.staves[0].symbols)
    notes = [n for n in corrected.score.parts[0].recurse().notes]
    assert [len(n.pitches) for n in notes][:4] == [1, 1, 1, 3]
    with pytest.raises(InvalidScore, match="Not symbols the reader knows: C4quarter, H2"):
        parse_tokens("C4quarter H2 |")


def test_the_shipped_reader_reads_an_engraved_melody() -> None:
    """The trained checkpoint reads a clean staff it never saw nearly without error."""
    from fractions import Fraction

    from engine.score.encoding import StaffContext, header_tokens, measure_tokens
    from engine.train.metrics import error_rate

    assert CHECKPOINT.is_file(), "checkpoints/score_reader.pt is missing"
    score = melody_score(parts=1, bars=4, key=-1)  # a C major scale under one flat: naturals
    page, boxes = engraved_page(score)
    assert len(boxes) == 1, "the melody should fit one system"
    truth = header_tokens(StaffContext(clef="clef:G2", key=-1, time="time:4/4"))
    for index, measure in enumerate(score.parts[0].getElementsByClass("Measure")):
        truth += measure_tokens(measure, system_start=index == 0, bar_quarters=Fraction(4))
    reading = read_score(image_bytes(page), load_reader(), name="melody.png")
    read = [t for s in reading.staves for t in s.tokens]
    assert error_rate([truth], [read]) < 0.1, (truth, read)
