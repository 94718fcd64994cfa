"""External tasks: reasoning-gym datasets (`gym:*`) and a user's own JSONL file (`jsonl:*`)."""

import json

import pytest

pytest.importorskip("reasoning_gym")

from r1kit import data, rewards, tasks
from r1kit.errors import R1kitError


def _columns(split, *names):
    return {name: list(split[name]) for name in names}


def _wrong(answer: str) -> str:
    return str(int(answer) + 1)  # never contains the oracle, so no partial credit


# ---------------------------------------------------------------- reasoning-gym


def test_gym_task_is_deterministic_with_curriculum_levels():
    task = tasks.get("gym:leg_counting")
    assert task.levels[:3] == (1, 2, 3)
    first = task.generate(6, seed=3, level=2)
    assert [p.question for p in first] == [p.question for p in task.generate(6, seed=3, level=2)]
    assert [p.question for p in first[:3]] == [p.question for p in task.generate(3, seed=3, level=2)]
    assert {p.question for p in first}.isdisjoint(p.question for p in task.generate(6, seed=4, level=2))
    assert all(p.steps == [] and p.task == "gym:leg_counting" and p.level == 2 for p in first)
    # a dataset without a reasoning-gym curriculum has its default config as level 1 only
    assert tasks.get("gym:gsm_symbolic").levels == (1,)
    with pytest.raises(R1kitError, match="levels 1..1"):
        tasks.get("gym:gsm_symbolic").check_level(2)


def test_gym_accuracy_reward_agrees_with_reasoning_gym():
    import reasoning_gym

    dataset = data.build("gym:chain_sum", [1, 2], 12, style="think", seed=0)
    train = dataset["train"]
    assert train[0]["steps"] == [] and train[0]["completion"].endswith(f"<answer>{train[0]['answer']}</answer>")
    columns = _columns(train, "answer", "task", "metadata")
    right = [f"<think>sum</think><answer>{a}</answer>" for a in columns["answer"]]
    wrong = [f"<think>sum</think><answer>{_wrong(a)}</answer>" for a in columns["answer"]]
    assert rewards.accuracy_reward(right, **columns) == [1.0] * len(train)
    assert rewards.accuracy_reward(wrong, **columns) == [0.0] * len(train)
    assert rewards.accuracy_reward(["no answer"], **_columns(train.select([0]), "answer", "task", "metadata")) == [0.0]
    score = reasoning_gym.get_score_answer_fn("chain_sum")
    for row, completion in zip(train, wrong):
        entry = {"question": row["question"], "answer": row["answer"], "metadata": json.loads(row["metadata"])}
        assert score(completion[len("<think>sum</think><answer>"):-len("</answer>")], entry) == 0.0
        assert score(row["answer"], entry) == 1.0


def test_gym_metadata_survives_the_row_round_trip():
    # arc_agi compares boards as tuples: plain JSON would turn them into lists and score 0.05
    task = tasks.get("gym:arc_agi")
    problem = task.generate(1, seed=0, level=1)[0]
    row = data.to_row(problem, "think")
    assert task.score_answer(problem.answer, row["answer"], row["metadata"]) == 1.0
    assert task.score_answer("x" * 100_000, row["answer"], row["metadata"]) == 0.0


def test_gym_errors_are_clear():
    with pytest.raises(R1kitError, match=r"unknown reasoning-gym dataset 'leg_countin' \(did you mean gym:leg_counting"):
        tasks.get("gym:leg_countin")
    with pytest.raises(R1kitError, match="has no config option 'max_animal' .*did you mean 'max_animals'"):
        tasks.get("gym:leg_counting", max_animal=3)
    with pytest.raises(R1kitError, match="gym:<reasoning-gym dataset>, jsonl:<path>"):
        tasks.get("gimme")
    with pytest.raises(R1kitError, match="gym:leg_counting level 1: reasoning-gym refuses its config"):
        tasks.get("gym:leg_counting", max_instances=1).generate(1, seed=0, level=1)  # level 1 has min 2
    with pytest.raises(R1kitError, match="fewer than 200 distinct problems"):
        tasks.get("gym:leg_counting").generate(200, seed=0, level=1)  # one animal, 2..4 of it


def test_grpo_on_gym_rows_logs_a_reward(tmp_path):
    from r1kit.models import build_char_tokenizer, build_tiny_model
    from r1kit.train import train_grpo

    tokenizer = build_char_tokenizer()
    model = build_tiny_model("tiny-1m", tokenizer)
    rows = data.build("gym:basic_arithmetic", [1], 9, style="compact", seed=0)["train"].remove_columns("completion")
    train = {"max_steps": 2, "per_device_train_batch_size": 4, "num_generations": 4,
             "max_completion_length": 16, "logging_steps": 1, "save_strategy": "no"}
    trainer = train_grpo(model, tokenizer, rows, output_dir=tmp_path / "grpo", rewards={"accuracy": 1.0},
                         train=train, metrics_path=tmp_path / "metrics.jsonl")
    assert trainer.state.global_step == 2
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any("reward" in row and 0.0 <= row["reward"] <= 1.0 for row in logged)


def test_evaluate_scores_gym_problems():
    from r1kit.engines import GenerationSettings
    from r1kit.evaluate import evaluate_model
    from r1kit.prompting import PromptFormat
    from r1kit.models import build_char_tokenizer, build_tiny_model

    tokenizer = build_char_tokenizer()
    model = build_tiny_model("tiny-1m", tokenizer)
    problems = tasks.get("gym:leg_counting").generate(4, seed=0, level=1)
    result = evaluate_model(model, tokenizer, problems, prompt_format=PromptFormat(style="think", chat=False),
                            settings=GenerationSettings(max_new_tokens=8))
    summary = result.as_dict()
    assert summary["n"] == 4 and 0.0 <= summary["accuracy"] <= 1.0
    assert list(summary["by_level"]) == ["1"]


# ---------------------------------------------------------------- jsonl


@pytest.fixture
def problem_file(tmp_path):
    rows = [
        {"question": "What is 6 * 7?", "answer": 42, "id": "mul"},
        {"question": "What is 1/2 + 1/4?", "answer": "3/4"},
        {"question": "Half of one, in LaTeX?", "answer": "\\frac{1}{2}", "level": 2},
        {"question": "The square root of 2?", "answer": "\\sqrt{2}", "level": 2},
        {"question": "What is 0.1 + 0.2?", "answer": "0.3", "level": 2},
    ]
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n\n")
    return path


@pytest.mark.parametrize("answer, predicted, right", [
    ("42", "42", True), ("42", "42.0", True), ("42", "43", False),
    ("3/4", "0.75", True), ("3/4", "6/8", True), ("3/4", "3/5", False),
    ("\\frac{1}{2}", "0.5", True), ("\\frac{1}{2}", "\\frac{2}{4}", True), ("\\frac{1}{2}", "\\frac{1}{3}", False),
    ("\\sqrt{2}", "\\sqrt{2}", True), ("\\sqrt{2}", "2^{1/2}", True), ("\\sqrt{2}", "\\sqrt{3}", False),
])
def test_jsonl_scoring(problem_file, answer, predicted, right):
    task = tasks.get(f"jsonl:{problem_file}")
    problem = next(p for level in task.levels for p in task.generate(len(task.rows[level]), seed=0, level=level)
                   if p.answer == answer)
    assert task.score(f"<answer>{predicted}</answer>", problem) == float(right)


def test_jsonl_rows_reward_and_determinism(problem_file):
    name = f"jsonl:{problem_file}"
    task = tasks.get(name)
    assert task.levels == (1, 2)
    assert [p.id for p in task.generate(2, seed=0, level=1)][0:2].count("mul") == 1
    draws = [[p.question for p in task.generate(3, seed=s, level=2)] for s in (0, 0, 1, 2, 3)]
    assert draws[0] == draws[1] and len(set(draws[0])) == 3
    assert [p.question for p in task.generate(2, seed=0, level=2)] == draws[0][:2]  # prefix-stable
    # all of a level splits into train and test with no shared question
    for seed in range(4):
        dataset = data.build(name, [2], 3, style="think", seed=seed, test_fraction=0.34)
        questions = [set(dataset[split]["question"]) for split in ("train", "test")]
        assert list(map(len, questions)) == [2, 1] and questions[0].isdisjoint(questions[1])
    train = dataset["train"]
    assert train[0]["completion"] == f"<think>\n\n</think>\n<answer>{train[0]['answer']}</answer>"
    columns = _columns(train, "answer", "task", "metadata")
    assert rewards.accuracy_reward([f"<answer>{a}</answer>" for a in columns["answer"]], **columns) == [1.0] * 2
    assert rewards.accuracy_reward(["<answer>7/3</answer>"] * 2, **columns) == [0.0] * 2


def test_jsonl_errors(tmp_path, problem_file):
    with pytest.raises(R1kitError, match="no such file"):
        tasks.get(f"jsonl:{tmp_path / 'missing.jsonl'}").check_level(1)
    with pytest.raises(R1kitError, match="has 2 problems at level 1, 3 were asked for; ask for at most 2"):
        tasks.get(f"jsonl:{problem_file}").generate(3, seed=0, level=1)
    with pytest.raises(R1kitError, match="has problems at level 1, 2, not 3"):
        tasks.get(f"jsonl:{problem_file}").check_level(3)
    cases = {
        '{"question": "q", "answer": "1"}\n{"question": "q2", "answer": 1\n': ":2: not valid JSON",
        '{"question": "q", "answer": "1"}\n\n{"question": "q2"}\n': ":3: 'answer' must be",
        '["q", "1"]\n': ":1: need a JSON object",
        '{"question": "q", "answer": "1", "level": 0}\n': ":1: 'level' must be a positive integer",
    }
    for i, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.jsonl"
        path.write_text(text)
        with pytest.raises(R1kitError, match=f"bad{i}.jsonl{message}"):
            tasks.get(f"jsonl:{path}").generate(1, seed=0, level=1)


# ---------------------------------------------------------------- recipes


def _recipe(task: str, levels: str = "1-2") -> dict:
    return {"name": "external", "task": task, "style": "think", "model": {"path": "some/model"},
            "stages": [{"name": "grpo", "kind": "grpo", "data": {"levels": levels, "count": 4}},
                       {"name": "eval", "kind": "eval", "models": ["model", "grpo"], "data": {"levels": levels}}]}


def test_recipes_accept_external_tasks(problem_file):
    from r1kit.recipe import validate

    assert validate(_recipe("gym:leg_counting")).task == "gym:leg_counting"
    assert validate(_recipe(f"jsonl:{problem_file}")).task == f"jsonl:{problem_file}"
    with pytest.raises(R1kitError) as error:
        validate(_recipe("gym:leg_countin"))
    assert str(error.value).count("\n") == 0
    assert "unknown reasoning-gym dataset 'leg_countin' (did you mean gym:leg_counting" in str(error.value)
    with pytest.raises(R1kitError, match="has problems at level 1, 2, not 3"):
        validate(_recipe(f"jsonl:{problem_file}", levels="1-3"))
