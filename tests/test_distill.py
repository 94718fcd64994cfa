"""Distillation end to end over HTTP: trace collection through a real `r1kit serve`, and a recipe
whose teacher is an OpenAI-compatible endpoint (a loopback stub that answers with the compiler's
traces, half of them corrupted) feeding sequence-level distillation."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("openai")
pytest.importorskip("fastapi")

from r1kit.errors import R1kitError
from r1kit.models import build_char_tokenizer, build_tiny_model, save_model
from r1kit.teachers import load_teacher
from r1kit.teachers.collect import collect, read_traces


def test_collection_through_a_real_r1kit_serve(tmp_path):
    from r1kit.serve import ServedModel, running

    tokenizer = build_char_tokenizer()
    save_model(build_tiny_model("tiny-1m", tokenizer, seed=2), tokenizer, tmp_path / "teacher",
               prompt_info={"style": "compact", "chat": False})
    with running(ServedModel.load(str(tmp_path / "teacher"), name="tiny")) as url:
        teacher = load_teacher("openai:tiny", base_url=url, mode="completions", style="compact", max_retries=0)
        summary = collect(teacher, task="arithmetic", levels=[1, 2], count=6, samples_per_problem=3,
                          out=tmp_path / "traces", max_tokens=24, temperature=1.0)
    total = summary.total
    assert summary.complete and total.problems == 6 and total.samples == 18
    assert total.accepted + sum(total.rejected.values()) == 18  # every sample judged, none lost
    assert len(read_traces(tmp_path / "traces")) == total.accepted
    assert summary.teacher == "openai:tiny"


def _compiler_answer(prompt: str, corrupt: bool) -> str:
    """What a perfect teacher would write in the compact style (or a wrong final answer)."""
    from r1kit.render import completion_text
    from r1kit.tasks.arithmetic import ArithmeticTask

    problem = ArithmeticTask().compile(prompt.strip())
    text = completion_text(problem, "compact")
    return text.rsplit("answer", 1)[0] + "answer 999999" if corrupt else text


@pytest.fixture
def compiler_endpoint():
    """An OpenAI-style /v1/completions stub: sample i of a prompt is right when i is even."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
            choices = [{"index": i * body.get("n", 1) + j, "text": _compiler_answer(p, corrupt=j % 2 == 1),
                        "finish_reason": "stop", "logprobs": None}
                       for i, p in enumerate(prompts) for j in range(body.get("n", 1))]
            payload = json.dumps({"id": "x", "object": "text_completion", "created": 0, "model": body["model"],
                                  "choices": choices,
                                  "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_recipe_distills_verified_traces_from_an_endpoint(compiler_endpoint, tmp_path, monkeypatch):
    from r1kit import recipe as recipes
    from r1kit.pipeline import Run

    monkeypatch.setenv("R1KIT_CACHE", str(tmp_path / "cache"))
    raw = {"name": "distill", "model": {"preset": "tiny-1m"}, "stages": [
        {"name": "base", "kind": "pretrain", "data": {"levels": "1-2", "count": 200, "style": "answer"},
         "train": {"max_steps": 2, "per_device_train_batch_size": 16}},
        {"name": "traces", "kind": "collect", "teacher": "openai:compiler",
         "teacher_options": {"base_url": compiler_endpoint, "mode": "completions", "style": "compact", "max_retries": 0},
         "data": {"levels": "1-2", "count": 20}, "samples_per_problem": 2, "max_tokens": 64},
        {"name": "student", "kind": "distill", "from": "base", "mode": "sequence", "traces": "traces",
         "flops_budget": 2.0e10, "train": {"per_device_train_batch_size": 8}},
        {"name": "eval", "kind": "eval", "models": ["base", "student"], "data": {"levels": "1-2", "count": 20},
         "retention": False},
        {"name": "report", "kind": "report"}]}
    run = Run(recipes.validate(raw), tmp_path / "run")
    results = run.execute()

    kept = results["collections"]["traces"]["total"]
    assert kept["samples"] == 40 and kept["accepted"] == 20 and kept["rejected"] == {"wrong_answer": 20}
    from datasets import load_from_disk

    data = load_from_disk(str(tmp_path / "run" / "stages" / "student" / "data"))
    assert len(data) == 20 and all(c.endswith("answer " + a) for c, a in zip(data["completion"], data["answer"]))
    student = results["costs"]["student"]
    assert student["own"]["student_flops"] > 0 and "traces" in student["lineage_stages"]
    assert any("loss" in row for row in results["curves"]["student"])
    # The held-out eval never asks a question the student was trained on.
    rows = json.loads((tmp_path / "run" / "stages" / "eval" / "eval.json").read_text())["problems"]["student"]
    asked = {row["question"] for row in rows}
    assert len(rows) == results["evals"][-1]["n"]
    assert not asked & set(data["question"])
    assert "Teacher traces kept by the verifier" in (tmp_path / "run" / "report.md").read_text()


def test_the_teacher_spec_is_parsed_once_at_validation():
    from r1kit import recipe as recipes
    from r1kit.teachers import TeacherSpec

    def stages(**teacher):
        return {"name": "t", "model": {"preset": "tiny-1m"},
                "stages": [{"name": "base", "kind": "pretrain"}, {"name": "d", "kind": "distill", "from": "base", **teacher}]}

    stage = recipes.validate(stages(mode="logit", teacher="base")).stage("d")
    assert stage.teacher == TeacherSpec("stage", "base") and recipes.stage_inputs(stage) == ["base", "base"]
    assert stage.model_dump()["teacher"] == "base"  # dumped as written: the stage hash holds
    assert recipes.validate(stages(mode="logit", teacher="models/t")).stage("d").teacher.backend == "local"
    with pytest.raises(R1kitError, match="logit distillation needs the teacher's weights .* not 'openai:m'"):
        recipes.validate(stages(mode="logit", teacher="openai:m"))
    with pytest.raises(R1kitError, match="teacher 'ollama:m': use local:PATH_OR_HUB_ID or openai:MODEL_NAME"):
        recipes.validate(stages(mode="logit", teacher="ollama:m"))
