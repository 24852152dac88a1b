"""The README quick start and every docs/tutorial-*.md command, checked as written so the docs cannot drift.

- every `meshsim ...` line in a bash block parses with the real command-line parser;
- the README puts `meshsim` on PATH (activating .venv) before a reader meets a bare `meshsim` command;
- the training tutorial evaluates on a split that neither trained the model nor chose `best.pt`;
- the tutorial commands run as written, in order, in a fresh folder, at small sizes (fewer trajectories, a
  smaller mesh, a few training steps: `shrink`); `meshsim demo` is the e2e demo test's, the README's `make`
  targets are what this suite is.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest
from procs import read_line, run, spawn

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

TINY_SCENE = ["num_frames=6", "cells_x=8", "cells_y=2", "ball_rings=2", "duration=2e-3"]
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


def _env() -> dict:
    """`meshsim` on PATH, as after `source .venv/bin/activate`."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "OMP_NUM_THREADS": "1"}


def _run_doc(doc: str, folder: Path, skip=()) -> list[str]:
    """Run the `meshsim` commands of docs/`doc` in order, at test size, in `folder`; returns the commands run."""
    done = []
    for argv in meshsim_commands(ROOT / "docs" / doc):
        small = shrink(argv)
        if small is None or small[0] in skip or "name=mgn_plate" in small:
            continue
        out = run(["meshsim", *small], timeout=300, cwd=folder, env=_env())
        assert out.returncode == 0, f"{doc}: `meshsim {' '.join(argv)}` failed:\n{out.stderr[-2000:]}"
        done.append(small[0])
    return done


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory):
    """docs/tutorial-training.md sections 1-3 as written, in a fresh folder holding only the project's recipes
    (`data/`): generate, inspect, train HCMT and MGN, roll out on the test split, evaluate."""
    folder = tmp_path_factory.mktemp("tutorial")
    shutil.copytree(ROOT / "data", folder / "data")
    done = _run_doc("tutorial-training.md", folder)
    return folder, done


def test_the_training_tutorial_runs_as_written(tutorial):
    folder, done = tutorial
    assert done.count("generate") == 3 and {"data", "train", "rollout", "eval"} <= set(done), done
    assert (folder / "eval.json").is_file() and (folder / "runs/hcmt_impact_plate/checkpoints/best.pt").is_file()
    # `meshsim view rollout.h5` as written: it announces its URL (then stopped, as by Ctrl-C)
    with spawn(["meshsim", "view", "rollout.h5", "--no-browser"], cwd=folder, env=_env(), stdout=-1, text=True) as p:
        assert "http://127.0.0.1:" in read_line(p, timeout=120)


@pytest.mark.slow
def test_the_playback_and_study_tutorials_run_as_written(tutorial):
    """docs/tutorial-playback.md and docs/tutorial-study.md, starting from the files `meshsim demo` leaves (here
    the tutorial's own rollout and checkpoint in their places)."""
    folder, _ = tutorial
    (folder / "runs/demo/hcmt/checkpoints").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(folder / "rollout.h5", folder / "runs/demo/rollout_hcmt.h5")
    best = "checkpoints/best.pt"
    shutil.copyfile(folder / "runs/hcmt_impact_plate" / best, folder / "runs/demo/hcmt" / best)
    browser = shutil.which("chromium") or os.path.exists("/usr/bin/chromium")
    done = _run_doc("tutorial-playback.md", folder, skip=() if browser else ("render",))
    assert done.count("export") == 4, done
    assert _run_doc("tutorial-study.md", folder) == ["study"]
    assert (folder / "runs/study-speed/study.csv").is_file()
