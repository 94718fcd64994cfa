"""Which prompt does a base model already answer? Greedy completions of one model under several
prompt wordings, on the same arithmetic problems per level, read leniently (the final number the
text commits to, as the `accuracy: {lenient: true}` reward and eval's flexible extraction read it).

    python benchmarks/prompt_probe.py                                    # SmolLM2, levels 0-2, 100 a level
    python benchmarks/prompt_probe.py --model DIR --levels 0,1 --count 200 --prompts short,think

Level 0 is level 1 with one-digit operands (the warm-up `r1-zero-smollm2-cpu` defines). `short` and
`think` are r1kit's styles as shipped (chat template on); the rest are wordings measured beside them.
Prints one JSON line per level and prompt.
"""

import argparse
import json
import time

import torch

from r1kit import tasks
from r1kit.data import generate
from r1kit.models import load_model
from r1kit.prompting import PromptFormat
from r1kit.verify import extract_flexible, is_correct

TASK = tasks.get("arithmetic").with_levels({0: {"like": 1, "max_value": 9}})


def prompts(tokenizer, shots):
    chat = lambda text: tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,  # noqa: E731
                                                      add_generation_prompt=True)

    def few_shot_chat(p):
        turns = []
        for s in shots[p.level]:
            turns += [{"role": "user", "content": f"What is {s.question}?"},
                      {"role": "assistant", "content": f"{s.question} = {s.answer}"}]
        turns.append({"role": "user", "content": f"What is {p.question}?"})
        return tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)

    return {
        "short": lambda p: PromptFormat("short", chat=True).prompt(p, tokenizer, TASK),
        "think": lambda p: PromptFormat("think", chat=True).prompt(p, tokenizer, TASK),
        "what-is": lambda p: chat(f"What is {p.question}?"),
        "what-is-number-only": lambda p: chat(f"What is {p.question}? Answer with the number only."),
        "compute": lambda p: chat(f"Compute {p.question}."),
        "compute-number-only": lambda p: chat(f"Compute {p.question}.\nAnswer with the number only."),
        "few-shot-chat": few_shot_chat,  # three solved problems of the level as earlier turns
        "few-shot-plain": lambda p: "".join(f"Q: What is {s.question}?\nA: {s.answer}\n\n" for s in shots[p.level])
        + f"Q: What is {p.question}?\nA:",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="packaged:smollm2")
    parser.add_argument("--levels", default="0,1,2")
    parser.add_argument("--count", type=int, default=100, help="problems a level")
    parser.add_argument("--prompts", default=None, help="comma-separated names (default: all)")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()
    model, tokenizer = load_model(args.model, dtype=torch.bfloat16)
    model.eval()
    tokenizer.padding_side = "left"
    levels = [int(level) for level in args.levels.split(",")]
    shots = {level: generate(TASK, [level], 3, seed=999) for level in levels}
    table = prompts(tokenizer, shots)
    names = args.prompts.split(",") if args.prompts else list(table)
    for level in levels:
        problems = generate(TASK, [level], args.count, seed=0)
        for name in names:
            start, outputs = time.perf_counter(), []
            texts = [table[name](p) for p in problems]
            for i in range(0, len(texts), 50):
                batch = tokenizer(texts[i:i + 50], return_tensors="pt", padding=True, add_special_tokens=False)
                with torch.no_grad():
                    out = model.generate(**batch, max_new_tokens=args.max_new_tokens, do_sample=False,
                                         pad_token_id=tokenizer.pad_token_id)
                outputs += tokenizer.batch_decode(out[:, batch.input_ids.shape[1]:], skip_special_tokens=True)
            if name == "few-shot-plain":  # the base goes on to ask itself the next question: its first answer
                outputs = [o.split("\nQ:")[0].split("\n\n")[0] for o in outputs]
            right = [is_correct(extract_flexible(o), p.answer) for o, p in zip(outputs, problems)]
            print(json.dumps({"level": level, "prompt": name, "lenient": sum(right) / len(right), "n": len(right),
                              "seconds": round(time.perf_counter() - start, 1), "first": outputs[0][:100]}), flush=True)


if __name__ == "__main__":
    main()
