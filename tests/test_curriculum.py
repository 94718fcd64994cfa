"""The GRPO curriculum: its state machine (promotion, dynamic sampling, the lower-level share), its
sampler's index layout against TRL's RepeatSampler, the recipe's checks, and one short real run."""

import re

import pytest
from datasets import Dataset
from trl.trainer.utils import RepeatSampler

from r1kit import recipe
from r1kit.errors import R1kitError
from r1kit.recipe import CurriculumSpec
from r1kit.train.common import read_metrics
from r1kit.train.curriculum import Curriculum, CurriculumSampler


def make(levels=(1, 1, 1, 1, 2, 2, 2, 2), group_size=2, **settings):
    ids = [f"p{i}" for i in range(len(levels))]
    spec = CurriculumSpec(**{"levels": sorted(set(levels)), **settings})
    lines = []
    return Curriculum(ids, list(levels), spec, group_size=group_size, seed=0, say=lines.append), lines


def groups(curriculum, rows, passed):
    """Observe one group of `group_size` completions per row, `passed` of them right."""
    g, level_of = curriculum.group_size, {r: lv for lv, members in curriculum.rows.items() for r in members}
    curriculum.observe([curriculum.ids[r] for r in rows for _ in range(g)], [level_of[r] for r in rows for _ in range(g)],
                       [1.0 if i < passed else 0.0 for _ in rows for i in range(g)], step=7)


def test_promotes_once_the_window_crosses_the_threshold_not_before():
    c, lines = make(window=4, promote_at=0.75)
    groups(c, [0, 1, 2], passed=2)  # 3 all-correct groups: the window of 4 is not full yet
    assert c.level == 1 and not lines
    groups(c, [3], passed=1)  # window (1, 1, 1, 0.5): 0.875 >= 0.75
    assert c.level == 2
    assert lines == [("curriculum, step 7: level 1 passed 88% of its last 4 groups (promote_at 75%); "
                      "level 2 is now active")]


def test_a_full_window_below_the_threshold_does_not_promote():
    c, lines = make(window=4, promote_at=0.8)
    groups(c, [0, 1, 2, 3], passed=1)  # pass rate 0.5 each
    assert c.level == 1 and c.pass_rate(1) == 0.5 and not lines
    groups(c, [4], passed=2)  # level-2 groups do not count towards level 1
    assert c.level == 1


def test_the_last_level_stays_active():
    c, _ = make(levels=(1, 1), window=1, promote_at=0.5)
    groups(c, [0], passed=2)
    assert c.level == 1


def test_skips_problems_whose_last_group_was_all_correct_or_all_wrong():
    c, _ = make(levels=(1,) * 6, lower_share=0.0)
    groups(c, [0], passed=2)  # all correct
    groups(c, [1], passed=0)  # all wrong
    groups(c, [2], passed=1)  # mixed: still informative
    assert not c.eligible(0) and not c.eligible(1)
    assert c.eligible(2) and c.eligible(3)  # 3 is unseen
    drawn = c.draw(4)
    assert sorted(drawn) == [2, 3, 4, 5]
    assert c.report()["curriculum/skipped"] == pytest.approx(2 / 6)


def test_a_batch_is_filled_with_skipped_problems_when_too_few_are_eligible():
    c, _ = make(levels=(1,) * 3, lower_share=0.0)
    groups(c, [0, 1], passed=2)
    assert sorted(c.draw(3)) == [0, 1, 2]


def test_keep_zero_variance_keeps_them_all():
    c, _ = make(levels=(1,) * 4, keep_zero_variance=1.0)
    groups(c, [0, 1, 2, 3], passed=0)
    assert all(c.eligible(r) for r in range(4))


def test_lower_levels_keep_their_share_after_a_promotion():
    levels = (1,) * 20 + (2,) * 20
    c, _ = make(levels=levels, window=1, promote_at=0.5, lower_share=0.25)
    assert all(levels[r] == 1 for r in c.draw(8))  # before: the active level only
    groups(c, [0], passed=1)
    drawn = c.draw(8)
    assert sorted(levels[r] for r in drawn) == [1, 1, 2, 2, 2, 2, 2, 2]
    assert len(set(drawn)) == 8


def test_report_gives_the_mix_since_the_last_log_and_then_starts_again():
    c, _ = make(window=8)
    groups(c, [0, 1, 2], passed=1)
    groups(c, [4], passed=0)
    report = c.report()
    assert report["curriculum/active_level"] == 1
    assert report["curriculum/share/level_1"] == 0.75 and report["curriculum/share/level_2"] == 0.25
    assert report["curriculum/pass_rate/level_1"] == 0.5 and report["curriculum/pass_rate/level_2"] == 0.0
    assert report["curriculum/zero_variance"] == 0.25
    assert "curriculum/share/level_1" not in c.report()  # nothing observed since


def test_state_survives_a_checkpoint():
    c, _ = make(window=2, promote_at=0.5)
    groups(c, [0, 1], passed=1)
    d, _ = make(window=2, promote_at=0.5)
    d.load_state_dict(c.state_dict())
    assert d.level == 2 and d.last == c.last and list(d.recent[1]) == [0.5, 0.5]


def canonical(indices, block):
    """Each index replaced by its order of first appearance within its block: the layout alone."""
    out = []
    for start in range(0, len(indices), block):
        first = {}
        out += [first.setdefault(i, len(first)) for i in indices[start:start + block]]
    return out


@pytest.mark.parametrize("mini, batch, repeat", [(2, 3, 4), (4, 2, 1), (3, 5, 2)])
def test_the_sampler_lays_indices_out_as_trls_repeat_sampler(mini, batch, repeat):
    n = 17
    c, _ = make(levels=(1,) * n, group_size=mini, keep_zero_variance=1.0)
    ours = list(CurriculumSampler(c, n, mini_repeat_count=mini, batch_size=batch, repeat_count=repeat))
    trl = list(RepeatSampler(list(range(n)), mini_repeat_count=mini, batch_size=batch, repeat_count=repeat, seed=0))
    sampler = CurriculumSampler(c, n, mini_repeat_count=mini, batch_size=batch, repeat_count=repeat)
    assert len(ours) == len(trl) == len(sampler)
    assert canonical(ours, mini * batch * repeat) == canonical(trl, mini * batch * repeat)
    assert len(set(ours[:mini * batch])) == batch  # distinct prompts in a batch


def test_the_sampler_reads_the_live_state():
    levels = (1,) * 4 + (2,) * 4
    c, _ = make(levels=levels, window=1, promote_at=0.5, lower_share=0.0)
    it = iter(CurriculumSampler(c, 8, mini_repeat_count=2, batch_size=2, repeat_count=1))
    first = [next(it) for _ in range(4)]
    groups(c, [first[0]], passed=1)  # promoted between two batches
    second = [next(it) for _ in range(4)]
    assert {levels[r] for r in first} == {1} and {levels[r] for r in second} == {2}


# ------------------------------------------------------------------ recipe

def grpo_recipe(**curriculum):
    return {"name": "x", "model": {"preset": "tiny-1m"},
            "stages": [{"name": "g", "kind": "grpo", "data": {"levels": "1-3", "count": 50},
                        "curriculum": curriculum}]}


@pytest.mark.parametrize("curriculum, message", [
    ({"levels": [1, 4]}, "curriculum.levels [4] are not in data.levels [1, 2, 3]"),
    ({"promote_at": 0}, "promote_at: must be more than 0, got 0"),
    ({"promote_at": 1.2}, "promote_at: must be at most 1, got 1.2"),
    ({"window": 0}, "window: must be at least 1, got 0"),
    ({"start": 5}, "curriculum.start 5 is not one of curriculum.levels [1, 2, 3]"),
    ({"promote": 0.5}, "unknown key 'stages.g.curriculum.promote' (did you mean 'promote_at'?)"),
])
def test_the_recipe_refuses_a_bad_curriculum(curriculum, message):
    with pytest.raises(R1kitError, match=re.escape(message)):
        recipe.validate(grpo_recipe(**curriculum))


def test_the_recipe_defaults_and_stage_hash():
    from r1kit.pipeline import stage_hash

    stage = recipe.validate(grpo_recipe()).stages[0]
    assert stage.curriculum.levels == [1, 2, 3] and stage.curriculum.promote_at == 0.8
    plain = recipe.validate({**grpo_recipe(), "stages": [{"name": "g", "kind": "grpo"}]})
    assert "curriculum" not in plain.stages[0].model_dump(by_alias=True, mode="json")  # old hashes unchanged
    assert stage_hash(plain, plain.stages[0]) != stage_hash(recipe.validate(grpo_recipe()), stage)
    with pytest.raises(R1kitError, match="one process only"):
        recipe.validate(grpo_recipe(), processes=2)


# ------------------------------------------------------------------ a real run

def test_a_short_grpo_run_logs_the_curriculum(tmp_path, half_right_accuracy):
    from r1kit.models import build_char_tokenizer, build_tiny_model
    from r1kit.report import plot_level_mix
    from r1kit.train.grpo import train_grpo

    tokenizer = build_char_tokenizer()
    model = build_tiny_model("tiny-1m", tokenizer, seed=0)
    dataset = Dataset.from_list([{"id": f"p{i}", "level": 1 + i % 2, "prompt": f"{i}+{i}\n", "answer": str(2 * i)}
                                 for i in range(32)])
    train = {"per_device_train_batch_size": 16, "num_generations": 4, "max_completion_length": 2,
             "logging_steps": 1, "save_steps": 2}
    lines = []
    spec = CurriculumSpec(levels=[1, 2], window=2, promote_at=0.3, lower_share=0.25)
    for steps in (2, 4):  # the second call resumes from checkpoint-2, with the curriculum's state
        train_grpo(model, tokenizer, dataset, output_dir=tmp_path / "out", rewards={"accuracy": 1.0},
                   train={**train, "max_steps": steps}, seed=0, health=False, curriculum=spec, say=lines.append)
    assert (tmp_path / "out" / "checkpoint-2" / "curriculum.json").is_file()
    rows = [r for r in read_metrics(tmp_path / "out" / "metrics.jsonl") if "loss" in r]
    assert len(rows) == 4
    assert all("curriculum/active_level" in r and "curriculum/share/level_1" in r for r in rows)
    # Step 1's groups (all level 1) promote at once; step 2's prompts were drawn before they were in
    # (the dataloader runs one batch ahead), so the new mix shows from step 3.
    assert [r["curriculum/active_level"] for r in rows] == [2, 2, 2, 2]
    assert [r["curriculum/share/level_2"] for r in rows] == [0.0, 0.0, 0.75, 0.75]
    assert "rewards/half_right/mean" in rows[0]  # TRL's reward keys keep the function's name
    assert len(lines) == 1 and lines[0].startswith("curriculum, step 1: level 1") and "level 2 is now active" in lines[0]
    assert plot_level_mix({"grpo": rows}) is not None and plot_level_mix({"sft": [{"step": 1, "loss": 1.0}]}) is None


def test_the_report_plots_the_level_mix_of_curriculum_stages(tmp_path):
    import json

    from r1kit.report import write_report

    mix = [{"step": s, "reward": 0.5, "loss": 0.0, "curriculum/active_level": 1 + (s > 2),
            "curriculum/share/level_1": 1.0 if s <= 2 else 0.25, "curriculum/share/level_2": 0.0 if s <= 2 else 0.75}
           for s in range(1, 5)]
    (tmp_path / "results.json").write_text(json.dumps({"recipe": "x", "curves": {"grpo": mix}}))
    md = write_report(tmp_path)[0].read_text()
    assert "## Curriculum: the share of prompts per level" in md
    (tmp_path / "results.json").write_text(json.dumps({"recipe": "x", "curves": {"grpo": [{"step": 1, "reward": 0.5}]}}))
    assert "Curriculum" not in write_report(tmp_path)[0].read_text()
