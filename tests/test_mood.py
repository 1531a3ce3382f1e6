"""engine.mood, its training labels and its baseline: hand-made rows, tiny random models."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.audio import SAMPLE_RATE, from_array
from engine.errors import MissingFile, ModelUnavailable, UnsupportedFormat
from engine.genre import (
    CHECKPOINT_ENV,
    GENRES,
    SEGMENT_SECONDS,
    analyse,
    classify,
    genres_from,
    load_classifier,
)
from engine.models.encoder import EncoderConfig, StudioEncoder
from engine.models.musicnn import MusicnnBackend
from engine.mood import (
    MOOD_TAGS,
    QUADRANT_SIGNS,
    QUADRANTS,
    TOP_TAGS,
    TagReliability,
    predict_moods,
    quadrant_of,
    tag_reliability,
    valence_arousal,
)
from engine.train.dataset import Example
from engine.train.metrics import bootstrap_interval
from engine.train.mood import (
    MoodData,
    MoodTrainConfig,
    TunedMemo,
    fit_first_stage,
    fit_heads,
    fit_second_stage,
    install_heads,
    midend_features,
    predict,
    tune_midend,
    tune_soup,
    variants,
    with_features,
)
from engine.train.mood_baseline import Rakel, make_base
from engine.train.mood_data import (
    MoodClip,
    intervals,
    quadrant_indices,
    read_clips,
    read_tag_sets,
    summarise,
    tag_targets,
)
from engine.train.teacher import teacher_path, teacher_selection
from tests.helpers import MOOD_LABELS, TINY_MOOD, save_tiny_mood_encoder

TINY = EncoderConfig(trunk="cnn", cnn_width=4, embedding_dim=16)
# Hand-made tag sets: every product tag, a few AllMusic moods each (lower case).
TAG_SETS = {tag: frozenset({f"{tag}-mood"}) for tag in MOOD_TAGS} | {
    "sadness": frozenset({"sad", "gloomy"}),
    "joy": frozenset({"happy", "cheerful"}),
    "loneliness": frozenset({"lonely", "plaintive"}),
    "lovelorn": frozenset({"bittersweet", "plaintive"}),
}


@pytest.fixture
def mood_checkpoint(tmp_path: Path) -> Path:
    """A randomly initialised, tiny encoder with genre and mood heads."""
    return save_tiny_mood_encoder(tmp_path / "encoder.pt")


# --- labels -----------------------------------------------------------------------------


def test_tag_targets_from_allmusic_moods() -> None:
    moods = [
        ("Sad", "Gloomy"),  # two moods of one tag: on once
        ("happy", "Plaintive"),  # plaintive belongs to two tags
        ("Angry",),  # in no tag's set
        (),
    ]
    expected = np.zeros((4, len(MOOD_TAGS)), dtype=np.float32)
    expected[0, MOOD_TAGS.index("sadness")] = 1
    expected[1, [MOOD_TAGS.index(t) for t in ("joy", "loneliness", "lovelorn")]] = 1
    np.testing.assert_array_equal(tag_targets(moods, TAG_SETS), expected)


def test_clips_and_tag_sets_are_read_from_the_data_folder(tmp_path: Path) -> None:
    folder = tmp_path / "mer4q"
    folder.mkdir()
    (folder / "metadata.csv").write_text(
        "id,artist,title,quadrant,moods,genres,split,file\n"
        "A1,Someone,Song,Q3,Sad; Wistful; Cold,Blues,train,audio/A1.ogg\n"
        "B2,Other,Tune,Q1,Happy,Pop/Rock; Jazz,val,audio/B2.ogg\n"
    )
    tags = {tag: [] for tag in MOOD_TAGS} | {"sadness": ["Sad"], "missing": ["Wistful"]}
    (folder / "mood_tags.json").write_text(json.dumps({"tags": tags}))
    clips = read_clips(tmp_path)
    assert clips == [
        MoodClip("A1", "Someone", "Q3", ("sad", "wistful", "cold"), "train"),
        MoodClip("B2", "Other", "Q1", ("happy",), "val"),
    ]
    targets = tag_targets([c.moods for c in clips], read_tag_sets(tmp_path))
    assert [MOOD_TAGS[i] for i in np.flatnonzero(targets[0])] == ["sadness", "missing"]
    assert not targets[1].any()
    np.testing.assert_array_equal(quadrant_indices(clips), [2, 0])


def test_tag_sets_in_another_order_are_refused(tmp_path: Path) -> None:
    (tmp_path / "mer4q").mkdir()
    tags = {tag: [] for tag in reversed(MOOD_TAGS)}
    (tmp_path / "mer4q" / "mood_tags.json").write_text(json.dumps({"tags": tags}))
    with pytest.raises(ValueError, match="expects"):
        read_tag_sets(tmp_path)


# --- quadrants ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("valence", "arousal", "quadrant"),
    [(0.5, 0.5, "Q1"), (-0.5, 0.5, "Q2"), (-0.5, -0.5, "Q3"), (0.5, -0.5, "Q4"), (0.0, 0.0, "Q1")],
)
def test_quadrant_of_valence_and_arousal(valence: float, arousal: float, quadrant: str) -> None:
    assert quadrant_of(valence, arousal) == quadrant


def test_valence_and_arousal_follow_the_quadrant_probabilities() -> None:
    for index, quadrant in enumerate(QUADRANTS):
        certain = np.eye(len(QUADRANTS))[index]
        assert valence_arousal(certain) == QUADRANT_SIGNS[quadrant]
        assert quadrant_of(*valence_arousal(certain)) == quadrant
    assert valence_arousal(np.full(4, 0.25)) == (0.0, 0.0)
    # Q1 0.5, Q2 0.3, Q3 0.2: valence 0.5 - 0.3 - 0.2 = 0, arousal 0.5 + 0.3 - 0.2 = 0.6
    assert valence_arousal(np.array([0.5, 0.3, 0.2, 0.0])) == pytest.approx((0.0, 0.6))


def test_summary_counts_quadrants_and_their_signs() -> None:
    tags = np.array([[1, 0], [0, 1], [1, 1], [0, 0]] * 3, dtype=np.float32)
    tags = np.pad(tags, ((0, 0), (0, len(MOOD_TAGS) - 2)))
    scores = tags * 0.8 + 0.1  # a perfect ranking of the two tags that occur
    true = np.array([0, 1, 2, 3] * 3)
    predicted = np.array([0, 1, 2, 3] * 2 + [1, 0, 0, 3])  # Q1<->Q2 and Q3->Q1 wrong
    figures = summarise(scores, tags, predicted, true)
    assert figures["macro_roc_auc"] == 1.0
    assert figures["mean_average_precision"] == 1.0
    assert set(figures["roc_auc"]) == {MOOD_TAGS[0], MOOD_TAGS[1]}
    assert figures["quadrant_accuracy"] == pytest.approx(9 / 12)
    assert figures["valence_accuracy"] == pytest.approx(9 / 12)
    assert figures["arousal_accuracy"] == pytest.approx(11 / 12)


def test_bootstrap_intervals_bracket_the_figure_and_narrow_with_more_items(
    rng: np.random.Generator,
) -> None:
    values = rng.normal(size=1000)
    few = bootstrap_interval(lambda i: float(values[:50][i].mean()), 50)
    many = bootstrap_interval(lambda i: float(values[i].mean()), 1000)
    assert few[0] < values[:50].mean() < few[1]
    assert many[0] < values.mean() < many[1]
    assert many[1] - many[0] < (few[1] - few[0]) / 2  # ~ 1 / sqrt(20) as wide
    assert bootstrap_interval(lambda i: float(values[:50][i].mean()), 50) == few  # seeded


def test_mood_intervals_of_perfect_and_of_noisy_scores(rng: np.random.Generator) -> None:
    tags = (rng.random((60, len(MOOD_TAGS))) < 0.3).astype(np.float32)
    quadrants = np.arange(60) % 4
    perfect = intervals(tags * 0.8 + 0.1, tags, quadrants, quadrants, resamples=200)
    assert perfect["macro_roc_auc"] == [1.0, 1.0]
    assert perfect["quadrant_accuracy"] == [1.0, 1.0]
    noisy = tags * 0.5 + rng.random(tags.shape)
    wrong = np.where(np.arange(60) % 3 == 0, (quadrants + 1) % 4, quadrants)
    figures = summarise(noisy, tags, wrong, quadrants)
    spread = intervals(noisy, tags, wrong, quadrants, resamples=200)
    for name in ("macro_roc_auc", "mean_average_precision", "quadrant_accuracy"):
        low, high = spread[name]
        assert low < figures[name] < high


# --- inference ------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0.5, 12.0])
def test_predict_moods_with_a_tiny_encoder(mood_checkpoint: Path, make_tone, seconds) -> None:
    clip = from_array(make_tone(seconds=seconds)[:, 0], SAMPLE_RATE, name="tone.wav")
    prediction = predict_moods(clip, load_classifier(mood_checkpoint))
    assert tuple(prediction.tags) == MOOD_TAGS
    assert all(0.0 <= p <= 1.0 for p in prediction.tags.values())
    assert -1.0 <= prediction.valence <= 1.0 and -1.0 <= prediction.arousal <= 1.0
    assert prediction.quadrant == quadrant_of(prediction.valence, prediction.arousal)
    assert sum(prediction.quadrants.values()) == pytest.approx(1.0, abs=1e-3)
    ranked = sorted(MOOD_TAGS, key=lambda tag: -prediction.tags[tag])
    assert prediction.top_tags == tuple(ranked[:TOP_TAGS])
    assert len(prediction.segments) == max(1, round(seconds / SEGMENT_SECONDS))
    assert prediction.segments[0].start == 0.0
    assert prediction.segments[-1].end == pytest.approx(seconds, abs=0.01)
    for segment in prediction.segments:
        assert segment.quadrant == quadrant_of(segment.valence, segment.arousal)
        assert tuple(segment.tags) == MOOD_TAGS


def test_one_analysis_serves_genre_and_mood(mood_checkpoint: Path, make_tone) -> None:
    classifier = load_classifier(mood_checkpoint)
    clip = from_array(make_tone(seconds=7.0)[:, 0], SAMPLE_RATE)
    analysis = analyse(clip, classifier)
    assert genres_from(analysis) == classify(clip, classifier)
    assert predict_moods(analysis) == predict_moods(clip, classifier)


def test_predict_moods_loads_the_model_and_the_file(
    mood_checkpoint: Path, tone_file, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CHECKPOINT_ENV, str(mood_checkpoint))
    path = tone_file("song.flac", seconds=4.0)
    from_path = predict_moods(path)
    assert from_path == predict_moods(path.read_bytes())
    assert from_path == predict_moods(str(path), load_classifier(mood_checkpoint))


def test_mood_heads_read_the_trunk_in_the_same_pass(mood_checkpoint: Path) -> None:
    encoder, labels, _ = StudioEncoder.from_checkpoint(mood_checkpoint)
    with torch.inference_mode():
        embedding, logits = encoder(torch.randn(2, 1, 96, 187))
    assert embedding.shape == (2, 16)
    assert {k: tuple(v.shape) for k, v in logits.items()} == {
        "genre": (2, len(GENRES)),
        "mood": (2, len(MOOD_TAGS)),
        "quadrant": (2, len(QUADRANTS)),
    }
    assert labels == MOOD_LABELS


def test_silence_gives_moods_with_a_warning(mood_checkpoint: Path) -> None:
    clip = from_array(np.zeros(SAMPLE_RATE * 3, dtype=np.float32), SAMPLE_RATE, name="quiet.wav")
    prediction = predict_moods(clip, load_classifier(mood_checkpoint))
    assert any("silent" in warning for warning in prediction.warnings)


def test_bad_files_raise_engine_errors(mood_checkpoint: Path, tmp_path: Path) -> None:
    classifier = load_classifier(mood_checkpoint)
    with pytest.raises(MissingFile):
        predict_moods(tmp_path / "nothing.wav", classifier)
    text = tmp_path / "notes.mp3"
    text.write_text("these are not sounds")
    with pytest.raises(UnsupportedFormat):
        predict_moods(text, classifier)


def test_tag_reliability_reads_the_figures_stored_in_the_checkpoint(tmp_path: Path) -> None:
    val = {"clips": 100, "roc_auc": {"joy": 0.88, "moving": 0.5}, "positives": {"joy": 12}}
    path = tmp_path / "measured.pt"
    torch.manual_seed(0)
    StudioEncoder(TINY_MOOD).save(path, labels=MOOD_LABELS, metrics={"mood": {"val": val}})
    classifier = load_classifier(path)

    assert tag_reliability(classifier) == (  # in MOOD_TAGS order; a tag not stored is left out
        TagReliability("moving", 0.5, 0, 100),
        TagReliability("joy", 0.88, 12, 100),
    )
    for metrics in ({}, {"mood": 3}, {"mood": {"val": {"roc_auc": {"joy": "high"}}}}):
        assert tag_reliability(replace(classifier, metrics=metrics)) == ()


def test_a_model_without_mood_heads_is_a_clear_error(tmp_path: Path, make_tone) -> None:
    path = tmp_path / "genre_only.pt"
    StudioEncoder(TINY).save(path, labels={"genre": list(GENRES)}, metrics={})
    clip = from_array(make_tone(seconds=2.0)[:, 0], SAMPLE_RATE)
    with pytest.raises(ModelUnavailable, match="no mood heads"):
        predict_moods(clip, load_classifier(path))
    with pytest.raises(ModelUnavailable, match="missing"):
        predict_moods(clip, load_classifier(tmp_path / "none.pt"))


# --- training -------------------------------------------------------------------------------


def tiny_mood_data(rng: np.random.Generator, dim: int) -> MoodData:
    """40 clips whose tags and quadrant are written in their first features."""
    clips, trunk, tags, quadrants = [], [], [], []
    for index in range(40):
        quadrant = index % 4
        tag_on = np.zeros(len(MOOD_TAGS), dtype=np.float32)
        tag_on[[index % len(MOOD_TAGS), (index + 5) % len(MOOD_TAGS)]] = 1
        features = rng.normal(size=(3, dim)).astype(np.float32)
        features[:, : len(MOOD_TAGS)] += 3 * tag_on
        features[:, len(MOOD_TAGS) : len(MOOD_TAGS) + 4] += 3 * np.eye(4)[quadrant]
        clips.append(MoodClip(f"c{index}", f"a{index // 2}", QUADRANTS[quadrant], (), "train"))
        trunk.append(features)
        tags.append(tag_on)
        quadrants.append(quadrant)
    return MoodData(clips, trunk, trunk, np.stack(tags), np.array(quadrants))


def test_fitted_heads_learn_and_install_without_touching_the_genre_model(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    torch.manual_seed(0)
    genre_only = tmp_path / "genre.pt"
    StudioEncoder(TINY).save(genre_only, labels={"genre": list(GENRES)}, metrics={"val": 1})
    original, _, _ = StudioEncoder.from_checkpoint(genre_only)
    data = tiny_mood_data(rng, dim=original.trunk.output_dim)
    config = MoodTrainConfig(source="trunk", quadrant="four-way", c=0.1)
    heads = fit_heads(config, data, list(range(40)))
    tags, quadrants = predict(heads, config, data, list(range(40)))
    assert summarise(tags, data.tags, quadrants, data.quadrants)["macro_roc_auc"] > 0.95
    assert (quadrants == data.quadrants).mean() > 0.9

    out = tmp_path / "encoder.pt"
    install_heads(genre_only, out, heads, "trunk", {"note": "tiny"})
    installed, labels, metrics = StudioEncoder.from_checkpoint(out)
    assert labels == MOOD_LABELS
    assert metrics == {"val": 1, "mood": {"note": "tiny"}}
    before = original.state_dict()
    after = installed.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)
    torch.testing.assert_close(after["trunk_heads.mood.weight"], heads["mood"].weight)
    install_heads(out, out, heads, "trunk", {})  # re-installing replaces the heads
    assert StudioEncoder.from_checkpoint(out)[0].config.trunk_heads == TINY_MOOD.trunk_heads


def test_the_second_stage_folds_into_one_linear_head(rng: np.random.Generator) -> None:
    data = tiny_mood_data(rng, dim=24)
    config = MoodTrainConfig(source="trunk", quadrant="four-way", c=0.1, stack_c=0.5)
    clips = list(range(40))
    first = fit_first_stage(config, data, clips)
    mix, shift = fit_second_stage(config, data, clips)
    assert mix.shape == (len(MOOD_TAGS), len(MOOD_TAGS) + 4)
    stacked = fit_heads(config, data, clips)
    patches = torch.from_numpy(data.trunk[7])
    with torch.no_grad():
        logits = torch.cat([first["mood"](patches), first["quadrant"](patches)], dim=1)
        expected = logits.double().numpy() @ mix.T + shift
        torch.testing.assert_close(
            stacked["mood"](patches).double(), torch.from_numpy(expected), atol=1e-4, rtol=1e-4
        )
        assert torch.equal(stacked["quadrant"].weight, first["quadrant"].weight)
    tags, _ = predict(stacked, config, data, clips)
    assert summarise(tags, data.tags, data.quadrants, data.quadrants)["macro_roc_auc"] > 0.95


def test_variants_name_their_own_second_stage() -> None:
    shipped = MoodTrainConfig(source="tuned", quadrant="four-way", c=0.001, stack_c=0.1)
    measured = variants(shipped)
    assert measured["tuned mid-end, four-way quadrant"].stack_c is None
    assert measured["trunk, four-way quadrant"] == replace(shipped, source="trunk", stack_c=None)
    stacked = [v.stack_c for k, v in measured.items() if k.startswith("tuned mid-end, second")]
    assert stacked == [0.03, 0.1, 1.0]
    tagger = measured["tuned mid-end + jamendo-fcn, second stage C 0.1, four-way quadrant"]
    assert tagger == replace(shipped, source="tuned+jamendo-fcn")


def test_tagger_sources_read_the_tagger_alone_or_beside_the_tuned_features(
    rng: np.random.Generator,
) -> None:
    data = tiny_mood_data(rng, dim=20)
    rows = [rng.normal(size=(3, 6)).astype(np.float32) for _ in data.clips]
    tuned = replace(data, tuned=data.trunk, taggers={"jamendo-fcn": rows})
    assert tuned.features("jamendo-fcn") is rows
    np.testing.assert_array_equal(
        tuned.features("tuned+jamendo-fcn")[2], np.concatenate([data.trunk[2], rows[2]], 1)
    )
    with pytest.raises(ValueError):
        tuned.features("tuned+jamendo-musicnn")  # that tagger was not loaded


def test_sources_concatenate_both_trunks_and_the_tag_logits(rng: np.random.Generator) -> None:
    data = tiny_mood_data(rng, dim=20)
    second = [rng.normal(size=(3, 5)).astype(np.float32) for _ in data.clips]
    logits = [rng.normal(size=(3, 4)).astype(np.float32) for _ in data.clips]
    both = replace(data, mtt_trunk=second, tag_logits=logits)
    assert both.features("mtt") is second
    assert both.features("trunk") is data.trunk
    np.testing.assert_array_equal(
        both.features("trunks+tags")[3], np.concatenate([data.trunk[3], second[3], logits[3]], 1)
    )
    assert both.features("trunks")[0].shape == (3, 25)
    with pytest.raises(ValueError):
        data.features("trunks")  # the MTT features were not loaded


def test_a_tuned_mid_end_learns_and_installs_beside_the_genre_model(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    torch.manual_seed(0)
    genre_only = tmp_path / "genre.pt"
    StudioEncoder(EncoderConfig()).save(genre_only, labels={"genre": list(GENRES)}, metrics={})
    original, _, _ = StudioEncoder.from_checkpoint(genre_only)
    start = MusicnnBackend()
    start.load_state_dict(original.trunk.musicnn.state_dict(), strict=False)
    data = tiny_mood_data(rng, dim=16)
    # Front-end maps (3 patches, 561 channels, 6 frames) with the tags and quadrant written in.
    fronts = []
    for clip in range(len(data.clips)):
        front = rng.normal(size=(3, 561, 6))
        front[:, :12] += 3 * data.tags[clip][None, :, None]
        front[:, 12 + data.quadrants[clip]] += 3
        fronts.append(front.astype(np.float16))
    data = replace(data, fronts=fronts, start=start)
    config = MoodTrainConfig(source="tuned", quadrant="four-way", c=0.1)
    clips = list(range(40))
    before = {k: v.clone() for k, v in start.state_dict().items()}
    midend = tune_midend(config, data, clips)
    assert all(torch.equal(v, before[k]) for k, v in start.state_dict().items())  # a copy
    changed = [k for k, v in midend.state_dict().items() if not torch.equal(v, before[k])]
    assert changed and not any("running" in k for k in changed)  # weights move, BN stats stay
    tuned, again = with_features(config, data, clips)
    assert again is not None  # tuned once more: the same weights (seeded)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in midend.state_dict().items())
    memo: TunedMemo = {}  # variants that differ only in their heads share one tuning
    shared = with_features(config, data, clips, memo)[1]
    assert with_features(replace(config, stack_c=0.1), data, clips, memo)[1] is shared
    assert with_features(replace(config, c=0.2), data, clips, memo)[1] is not shared
    assert tuned.features("tuned")[0].shape == (3, 1706)
    np.testing.assert_array_equal(tuned.tuned[5], midend_features(midend, fronts[5:6])[0])
    heads = fit_heads(config, tuned, clips)
    tags, quadrants = predict(heads, config, tuned, clips)
    assert summarise(tags, data.tags, quadrants, data.quadrants)["macro_roc_auc"] > 0.9
    # A soup of two: the weights of the seed-0 and seed-1 tunings, averaged.
    second = tune_midend(config, data, clips, seed=1)
    soup = tune_soup(replace(config, soup=2), data, clips).state_dict()
    for name, value in midend.state_dict().items():
        if value.is_floating_point():
            mean = (value + second.state_dict()[name]) / 2
            torch.testing.assert_close(soup[name], mean)
    assert any(not torch.equal(v, soup[k]) for k, v in midend.state_dict().items())

    out = tmp_path / "encoder.pt"
    install_heads(genre_only, out, heads, "tuned", {}, midend)
    installed, _, _ = StudioEncoder.from_checkpoint(out)
    assert installed.config.head_midend
    after = installed.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in original.state_dict().items())
    assert all(
        torch.equal(v, after[f"trunk.head_midend.{k}"]) for k, v in midend.state_dict().items()
    )
    patches = torch.randn(2, 1, 96, 187)
    with torch.inference_mode():
        front = installed.trunk.musicnn.frontend(patches[:, 0].transpose(1, 2))
        torch.testing.assert_close(
            installed(patches)[1]["mood"], heads["mood"](midend.trunk_features(front))
        )
    again.dense.bias.data += 1  # re-installing replaces the mid-end
    install_heads(out, out, heads, "tuned", {}, again)
    reinstalled = StudioEncoder.from_checkpoint(out)[0].trunk.head_midend
    assert reinstalled is not None and torch.equal(reinstalled.dense.bias, again.dense.bias)
    trunk = replace(config, source="trunk")
    install_heads(out, out, fit_heads(trunk, replace(data, trunk=tuned.tuned), clips), "trunk", {})
    assert not StudioEncoder.from_checkpoint(out)[0].config.head_midend  # back to the trunk


def test_the_mtt_teacher_caches_real_clips_only_in_its_own_folder(tmp_path: Path) -> None:
    def example(example_id: str, domain: str, genres: tuple[str, ...]) -> Example:
        return Example(example_id, Path("a.npy"), genres, domain, "x", example_id, "", "train", 30)

    examples = [example("r1", "real", ("jazz",)), example("r2", "real", ()),
                example("s1", "rendered", ("jazz",))]  # fmt: skip
    assert [e.example_id for e in teacher_selection(examples, "mtt")] == ["r1", "r2"]
    assert {e.example_id for e in teacher_selection(examples, "msd")} == {"r1", "r2", "s1"}
    assert teacher_path(tmp_path, examples[0], "mtt").parent.name == "musicnn_mtt"
    assert teacher_path(tmp_path, examples[0]).parent.name == "musicnn"


# --- baseline -------------------------------------------------------------------------------


@pytest.mark.parametrize("disjoint", [False, True])
def test_rakel_learns_labels_written_in_the_features(
    rng: np.random.Generator, disjoint: bool
) -> None:
    y = (rng.random((120, 6)) < 0.4).astype(np.float32)
    x = 2 * y + 0.5 * rng.normal(size=y.shape)
    model = Rakel(make_base(1.0), labelset_size=3, models=6, disjoint=disjoint, seed=0)
    scores = model.fit(x[:80], y[:80]).predict_proba(x[80:])
    assert scores.shape == (40, 6)
    assert ((scores > 0.5) == y[80:]).mean() > 0.9
    labelsets = [tuple(s) for s, _, _ in model.fitted]
    assert len(set(labelsets)) == len(labelsets)
    if disjoint:
        assert sorted(label for s in labelsets for label in s) == list(range(6))
    same = Rakel(make_base(1.0), labelset_size=3, models=6, disjoint=disjoint, seed=0)
    assert [tuple(s) for s in same.labelsets(6)] == labelsets
