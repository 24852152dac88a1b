"""The README quick start and every docs/tutorial-*.md command, checked as written so the docs cannot drift.

- every `meshsim ...` line in a bash block parses with the real command-line parser;
- the README puts `meshsim` on PATH (activating .venv) before a reader meets a bare `meshsim` command;
- the training tutorial evaluates on a split that neither trained the model nor chose `best.pt`;
- the tutorial and quick-start commands run as written, in order, in a fresh folder, at small sizes.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest
from procs import run, spawn

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("tutorial-*.md"))]
PLACEHOLDER = "path/to/"  # the imported-dataset example names a download the reader supplies


def bash_commands(path: Path) -> list[str]:
    """Commands of the ```bash blocks of `path`, continuation lines joined, comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                commands.append(" ".join(line.split()))
    return commands


def meshsim_commands(path: Path) -> list[list[str]]:
    out = []
    for command in bash_commands(path):
        words = shlex.split(command)
        if "meshsim" in words and "-m" not in words[:words.index("meshsim")]:
            out.append(words[words.index("meshsim") + 1:])
        elif words[:1] == ["torchrun"] or words[:1] == ["meshsim"]:
            out.append(words[words.index("meshsim") + 1:])
    return out


def test_the_docs_have_commands_to_check():
    counts = {p.name: len(bash_commands(p)) for p in DOCS}
    assert len(DOCS) >= 4 and all(counts.values()), counts


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_documented_command_parses(doc):
    from meshsim.cli import build_parser

    parser = build_parser()
    for argv in meshsim_commands(doc):
        try:
            args = parser.parse_args(argv)
        except SystemExit as err:
            pytest.fail(f"{doc.name}: `meshsim {' '.join(argv)}` does not parse (exit {err.code})")
        assert getattr(args, "func", None) is not None, f"{doc.name}: `meshsim {' '.join(argv)}` names no command"


def test_the_readme_puts_meshsim_on_path_before_its_first_bare_command():
    text = (ROOT / "README.md").read_text()
    text = text[text.index("## Quick start"):]  # from where the reader starts typing
    activate = text.find("source .venv/bin/activate")
    first_bare = min(m.start() for m in re.finditer(r"(?<![/\w])meshsim (view|demo|generate|train)", text))
    assert 0 <= activate < first_bare, "README: say `source .venv/bin/activate` before the first `meshsim ...`"
    makefile = (ROOT / "Makefile").read_text()
    assert "source $(VENV)/bin/activate" in makefile  # `make demo` ends by saying how to run what it printed


def test_the_training_tutorial_evaluates_on_a_split_unseen_by_training_and_selection():
    commands = bash_commands(ROOT / "docs" / "tutorial-training.md")
    chosen = {f for c in commands for f in re.findall(r"(?:train|valid)_data=\[([^\]]+)\]", c)}
    rollouts = [shlex.split(c) for c in commands if c.startswith("meshsim rollout")]
    assert rollouts and chosen
    for words in rollouts:
        data = words[3]
        assert data not in chosen, f"the tutorial rolls out on {data}, which trained or selected the model"


# -- running the commands as written --------------------------------------------------------------------------

TINY_SCENE = ["num_frames=4", "cells_x=8", "cells_y=2", "ball_rings=2", "duration=2e-3"]
TINY_TRAIN = ["steps=4", "warmup_steps=1", "log_interval=1", "checkpoint_interval=2", "val_interval=2",
              "val_rollouts=1", "val_steps=2", "batch_size=2", "time_limit_minutes=0", "model.latent=16",
              "model.blocks=1", "model.mlp_layers=1", "model.heads=2", "num_workers=0"]


def shrink(argv: list[str]) -> list[str] | None:
    """The documented command at test size (same command, options and paths; fewer and smaller samples)."""
    argv = list(argv)
    cmd = argv[0]
    if any(PLACEHOLDER in a for a in argv):
        return None
    if cmd == "generate":
        argv[argv.index("--num") + 1] = "2"
        return argv + TINY_SCENE
    if cmd == "train":
        argv = [a for a in argv if not a.startswith("time_limit_minutes=")]
        return argv + TINY_TRAIN
    if cmd == "study":
        argv = [("ball_speed=4,12" if a.startswith("ball_speed=") else a) for a in argv]
        argv[argv.index("--verify") + 1] = "1"
        return argv + [w for s in TINY_SCENE for w in ("--set", s)]
    if cmd == "render":
        return argv + (["--size", "320x160"] if "--size" not in argv else [])
    if cmd in ("demo", "view"):
        return None  # the demo is its own e2e test; view is started below and stopped
    return argv


@pytest.mark.slow
def test_training_and_playback_tutorials_run_as_written(tmp_path):
    """docs/tutorial-training.md sections 1-3, then docs/tutorial-playback.md, in a fresh folder holding only the
    recipes of the project (`data/`), with `meshsim` on PATH as after `source .venv/bin/activate`."""
    shutil.copytree(ROOT / "data", tmp_path / "data")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "OMP_NUM_THREADS": "1"}
    done = []
    for doc in ("tutorial-training.md", "tutorial-playback.md"):
        for argv in meshsim_commands(ROOT / "docs" / doc):
            small = shrink(argv)
            if small is None:
                continue
            if doc == "tutorial-playback.md" and not (tmp_path / "runs/demo/rollout_hcmt.h5").exists():
                (tmp_path / "runs/demo").mkdir(parents=True)  # the playback tutorial starts from the demo's rollout
                shutil.copyfile(tmp_path / "rollout.h5", tmp_path / "runs/demo/rollout_hcmt.h5")
            if small[0] == "render" and not (shutil.which("chromium") or os.path.exists("/usr/bin/chromium")):
                continue
            if small[0] == "train" and "name=mgn_plate" in small:
                continue
            out = run(["meshsim", *small], timeout=300, cwd=tmp_path, env=env)
            assert out.returncode == 0, f"{doc}: `meshsim {' '.join(argv)}` failed:\n{out.stderr[-2000:]}"
            done.append(small[0])
    assert {"generate", "data", "train", "rollout", "eval", "export"} <= set(done), done
    # `meshsim view FILE` as printed: it announces its URL; stop it like Ctrl-C would
    with spawn(["meshsim", "view", "rollout.h5", "--no-browser"], cwd=tmp_path, env=env, stdout=-1, text=True) as p:
        from procs import read_line

        assert "http://127.0.0.1:" in read_line(p, timeout=120)
