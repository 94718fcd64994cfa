"""`python -m r1kit ...`, which is also how `accelerate launch -m r1kit run RECIPE` starts each process."""

from r1kit.cli import run

if __name__ == "__main__":
    run()
