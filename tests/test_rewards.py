"""Rewards: TRL's calling convention, and a catalogue of completions that try to game them."""

import pytest

from r1kit import rewards
from r1kit.rewards import accuracy_reward, format_reward, overlong_penalty, step_reward

# Problem: 12 + 3 * (4 - 1) = 21, reference steps below.
STEPS = ["4 - 1 = 3", "3 * 3 = 9", "12 + 9 = 21"]
GOOD = "<think>\n4 - 1 = 3\n3 * 3 = 9\n12 + 9 = 21\n</think>\n<answer>21</answer>"

# (completion, accuracy, format, steps)
CATALOGUE = [
    (GOOD, 1.0, 1.0, 1.0),
    ("4-1=3;3*3=9;12+9=21|answer 21", 1.0, 0.0, 1.0),
    ("answer 21", 1.0, 0.0, 0.0),
    ("<think>\n</think>\n<answer>21</answer>", 1.0, 0.0, 0.0),  # empty thinking
    ("<think>x</think><answer>21</answer><answer>22</answer>", 0.0, 0.0, 0.0),  # two answers: last counts
    ("<think>x</think><answer>22</answer><answer>21</answer>", 1.0, 0.0, 0.0),  # two answer blocks break format
    ("<think>a</think><think>b</think><answer>21</answer>", 1.0, 0.0, 0.0),
    ("<answer>21</answer><think>late</think>", 1.0, 0.0, 0.0),  # wrong order
    ("<think>ok</think><answer>21</answer> and more text", 1.0, 0.0, 0.0),
    ("<think>ok</think><answer>21 or 22</answer>", 0.0, 1.0, 0.0),  # two values in one slot
    ("<think>ok</think><answer>21, 22</answer>", 0.0, 1.0, 0.0),
    ("<think>ok</think><answer>21.0</answer>", 1.0, 1.0, 0.0),
    ("<think>ok</think><answer>42/2</answer>", 1.0, 1.0, 0.0),
    ("<think>ok</think><answer>+21</answer>", 1.0, 1.0, 0.0),
    ("<think>ok</think><answer>\\boxed{21}</answer>", 1.0, 1.0, 0.0),  # LaTeX through math-verify
    ("<think>ok</think><answer>2,1</answer>", 0.0, 1.0, 0.0),  # not a thousands form
    ("The answer is 21.", 1.0, 0.0, 0.0),
    ("\\boxed{21}", 1.0, 0.0, 0.0),
    ("answer 20 answer 21", 1.0, 0.0, 0.0),  # the last marker counts
    ("answer 21 answer 20", 0.0, 0.0, 0.0),
    ("4-1=3;3*3=9;12+9=21|answer 20", 0.0, 0.0, 1.0),  # right steps, wrong answer
    ("4-1=3;3*3=10;12+10=22|answer 22", 0.0, 0.0, 0.0),  # one slip: 1 matched, less 1 for 3*3=10
    ("1+1=2;" * 100 + "answer 21", 1.0, 0.0, 0.0),  # true but irrelevant steps
    ("4-1=3;4-1=3;4-1=3;4-1=3|answer 21", 1.0, 0.0, 1 / 3),  # repeating a step earns it once
    ("12+9=21;3*3=9;4-1=3|answer 21", 1.0, 0.0, 1 / 3),  # steps out of order
    ("4-1=3;3*3=9;12+9=21;2*2=5|answer 21", 1.0, 0.0, 2 / 3),  # a false extra step costs one
    ("4 - 1 = 3, 3 * 3 = 9, 12 + 9 = 21. Answer: 21", 1.0, 0.0, 1.0),
    ("Subtract 1 from 4 to get 3. 3 times 3 is 9. 12 plus 9 is 21. The answer is 21.", 1.0, 0.0, 1.0),
    ("3 * 4 = 12 ... " + "9" * 100_000, 0.0, 0.0, 0.0),
    ("answer " + "2" * 100_000, 0.0, 0.0, 0.0),
    ("answer 2**1000000", 0.0, 0.0, 0.0),
    ("answer 1e9999", 0.0, 0.0, 0.0),
    ("answer __import__('os').system('true')", 0.0, 0.0, 0.0),
    ("answer NaN", 0.0, 0.0, 0.0),
    ("<answer>" + "(" * 10_000 + "21" + ")" * 10_000 + "</answer>", 0.0, 0.0, 0.0),
    ("<think>" + "x" * 1_000_000 + "</think><answer>21</answer>", 1.0, 1.0, 0.0),  # 1 MB, still judged
    ("", 0.0, 0.0, 0.0),
    ("21", 0.0, 0.0, 0.0),  # a bare number is not an answer
]


@pytest.mark.parametrize("completion, accuracy, fmt, steps", CATALOGUE, ids=[f"case{i}" for i in range(len(CATALOGUE))])
def test_catalogue(completion, accuracy, fmt, steps):
    assert accuracy_reward([completion], answer=["21"]) == [accuracy]
    assert format_reward([completion]) == [fmt]
    assert step_reward([completion], steps=[STEPS]) == [pytest.approx(steps)]


def test_catalogue_covers_every_verdict():
    """Right and wrong answers, with and without the format, and step scores of 0, 1 and between."""
    answers = {(accuracy, fmt) for _, accuracy, fmt, _ in CATALOGUE}
    assert answers == {(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)}
    steps = {s for *_, s in CATALOGUE}
    assert 0.0 in steps and 1.0 in steps and any(0.0 < s < 1.0 for s in steps)


def test_conversational_completions_and_extra_columns():
    conversation = [{"role": "assistant", "content": GOOD}]
    columns = {"answer": ["21"], "steps": [STEPS], "level": [2], "prompts": ["..."], "completion_ids": [[1, 2]]}
    assert accuracy_reward([conversation], **columns) == [1.0]
    assert format_reward([conversation], **columns) == [1.0]
    assert step_reward([conversation], **columns) == [1.0]


def test_overlong_penalty_is_soft():
    penalty = overlong_penalty(max_length=100, cache_length=20)
    assert penalty(["x"] * 3, completion_ids=[[0] * 80, [0] * 90, [0] * 120]) == [0.0, -0.5, -1.0]


def test_registry_builds_weighted_rewards():
    functions, weights = rewards.build({"accuracy": 1.0, "steps": 0.5, "overlong": {"weight": 0.2, "max_length": 64, "cache_length": 16}})
    assert [f.__name__ for f in functions] == ["accuracy_reward", "step_reward", "overlong_penalty"]
    assert weights == [1.0, 0.5, 0.2]
    with pytest.raises(Exception, match="did you mean 'accuracy'"):
        rewards.get("acuracy")


def test_accuracy_bound_to_its_task_agrees_with_the_rows_task_column():
    """open-r1's factory style: `build(spec, task=...)` binds the scorer once; the unbound reward
    (for a GRPOTrainer of your own) finds it by each row's `task` column. Same scores either way."""
    from r1kit import data, tasks

    rows = data.build("countdown", [1, 2], 12, style="think", seed=3)["train"]
    columns = {key: list(rows[key]) for key in ("answer", "task", "metadata")}  # as TRL passes them
    completions = [c if i % 3 else "<answer>1 + 1</answer>" for i, c in enumerate(list(rows["completion"]))]
    (bound,), _ = rewards.build({"accuracy": 1.0}, task=tasks.get("countdown"))
    expected = [0.0 if i % 3 == 0 else 1.0 for i in range(len(completions))]
    assert bound(completions, **columns) == accuracy_reward(completions, **columns) == expected
    assert bound.__name__ == "accuracy_reward"  # TRL logs rewards/<name>/mean
    assert bound(completions, answer=columns["answer"], metadata=columns["metadata"]) == expected  # no task column


# (completion, lenient accuracy, answered) for gold 21: how a base states answers in its own words
LENIENT = [
    ("answer 21", 1.0, 1.0),
    ("answer 20", 0.0, 1.0),  # a well-formed wrong answer earns only the format credit
    ("12 + 9 = 21", 1.0, 0.0),  # right, in its own words: lenient sees it, the slot is empty
    ("To add 12 and 9: 12 + 9 = 21\n1. Add", 0.0, 0.0),  # rambling past the answer: the last number counts
    ("12 + 9 = 21, then 21 + 1 = 22", 0.0, 0.0),  # the final number it commits to counts
    ("answer 21 and then 30", 0.0, 1.0),  # the slot's last number: 30
    ("answer 21\nThen 2 more problems.", 1.0, 1.0),  # the slot wins over numbers after it
    ("no number here", 0.0, 0.0),
    ("", 0.0, 0.0),
    ("answer " + "2" * 100_000, 0.0, 1.0),  # bounded: read, judged wrong
]


@pytest.mark.parametrize("completion, lenient, answered", LENIENT, ids=[f"case{i}" for i in range(len(LENIENT))])
def test_lenient_accuracy_and_the_answered_credit(completion, lenient, answered):
    (score, credit), weights = rewards.build({"accuracy": {"weight": 1.0, "lenient": True}, "answered": 0.1})
    assert weights == [1.0, 0.1]
    assert score([completion], answer=["21"]) == [lenient]
    assert credit([completion], answer=["21"]) == [answered]
    strict = accuracy_reward([completion], answer=["21"])[0]
    assert strict <= lenient  # lenient sees every answer strict does


# (completion, bare credit): the one-line answer a `short` prompt asks for, right or wrong
BARE = [
    ("8", 1.0),
    (" 8.\n", 1.0),  # surrounding space and a full stop are still one bare line
    ("3 + 5 = 8", 1.0),
    ("-1.5", 1.0),
    ("9", 1.0),  # wrong answers earn the credit too: it rewards the format only
    ("The answer is 8.", 0.0),  # words
    ("To add 3 and 5, we add them: 8", 0.0),
    ("8\n9", 0.0),  # two lines
    ("+ - =", 0.0),  # no number
    ("", 0.0),
    ("1" * 41, 0.0),  # longer than a bare line
]


@pytest.mark.parametrize("completion, credit", BARE, ids=[f"case{i}" for i in range(len(BARE))])
def test_the_bare_credit(completion, credit):
    (score, bare), weights = rewards.build({"accuracy": {"weight": 1.0, "lenient": True}, "bare": 0.1})
    assert weights == [1.0, 0.1]
    assert bare([completion], answer=["8"]) == [credit]
    assert bare([[{"role": "assistant", "content": completion}]]) == [credit]  # conversational completions too
