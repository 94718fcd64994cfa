"""The command line: happy paths, and bad input → one clear line, non-zero exit, no traceback."""

import subprocess
import sys

import pytest


def r1kit(*args, cwd=None):
    return subprocess.run([sys.executable, "-c", "from r1kit.cli import run; run()", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def test_compile_prints_the_trace():
    result = r1kit("compile", "12*(3+4)")
    assert result.returncode == 0
    assert result.stdout == "<think>\n3 + 4 = 7\n12 * 7 = 84\n</think>\n<answer>84</answer>\n"
    assert r1kit("compile", "36*18", "--style", "compact", "--granularity", "partial").stdout.strip() == \
        "36*10=360;36*8=288;360+288=648|answer 648"


def test_data_build(tmp_path):
    result = r1kit("data", "build", "--task", "arithmetic", "--levels", "1-3", "--count", "300",
                   "--style", "compact", "--seed", "0", "--out", str(tmp_path / "d"), "--jsonl")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "d" / "train.jsonl").exists() and (tmp_path / "d" / "hf").is_dir()


@pytest.mark.parametrize(
    "args, message",
    [
        (["compile", "12 +* 3"], "error: expected a number but found '*' at column 5"),
        (["compile", "1/(2-2)"], "error: division by zero"),
        (["compile", "1+2", "--style", "fancy"], "error: Invalid value for '--style'"),
        (["compile"], "error: Missing argument"),
        (["data", "build", "--out", "X", "--task", "arith"], "error: unknown task 'arith' (did you mean 'arithmetic'?)"),
        (["data", "build", "--out", "X", "--levels", "0-2"], "error: arithmetic has levels 1..6, got 0"),
        (["data", "build", "--out", "X", "--levels", "x"], "error: bad levels 'x'"),
        (["data", "build", "--out", "X", "--count", "many"], "error: Invalid value for '--count'"),
        (["data", "build", "--out", "X", "--count", "1"], "error: Invalid value for '--count'"),
        (["data", "build", "--out", "X", "--levels", "1-99999999999"], "error: bad levels '1-99999999999': levels go up to"),
        (["eval", "--model", "m", "--k", "0"], "error: Invalid value for '--k'"),
        (["data", "build", "--out", "X", "--test-fraction", "2"], "error: test fraction must be between 0 and 1"),
        (["no-such-command"], "error: No such command"),
    ],
)
def test_bad_input_is_one_clear_line(args, message, tmp_path):
    result = r1kit(*args, cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
    assert not (tmp_path / "X").exists()
