"""Every command refuses every bad input of the corpus (tests/reliability/corpus.py) with ONE line on stderr,
exit code 2, no traceback, and leaves every file that existed before byte-for-byte and mtime untouched.

Commands run in this process through `meshsim.cli.main` (the console script's entry point), so stderr is the
command's whole stderr. Files that existed are fingerprinted (sha256 + mtime_ns) before and after each case.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socketserver
from pathlib import Path

import pytest

from meshsim.cli import main

from .conftest import TRAIN_YAML, assert_one_error_line
from .corpus import DEFECTIVE_MESHES, UNUSABLE_MESHES, write_checkpoints, write_hdf5, write_meshes


def _fingerprint(*folders: Path) -> dict[str, tuple[str, int]]:
    out = {}
    for folder in folders:
        for root, _, files in os.walk(folder):
            for name in files:
                p = Path(root) / name
                out[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory, good_inputs):
    """Good inputs, the corpus built from them, and a workspace of precious outputs that must never change."""
    from meshsim.train.nclaw import NCLawTrainConfig, train_nclaw

    root = tmp_path_factory.mktemp("corpus")
    good = root / "good"
    shutil.copytree(good_inputs["folder"], good)  # a private copy: the corpus folder is fingerprinted as a whole
    store, ckpt, rollout = good / "store.h5", good / "run" / "checkpoints" / "last.pt", good / "rollout.h5"
    assert main(["nclaw", "generate", "--out", str(good / "gt.h5"), "--material", "jelly", "--set", "steps=4",
                 "--set", "spacing=0.1", "--set", "res=8"]) == 0
    ncfg = NCLawTrainConfig(data=str(good / "gt.h5"), epochs=1, teacher_start=2, teacher_end=2, widths=[4])
    train_nclaw(ncfg, good / "nrun", progress=False)
    marker = root / "PAYLOAD_RAN"
    precious = root / "precious"
    precious.mkdir()
    for name in ("out.h5", "out.vtkhdf", "report.json", "plot.png"):
        (precious / name).write_bytes(b"precious " + name.encode())
    shutil.copyfile(store, precious / "gen.h5")
    (precious / "a_file").write_text("a regular file: nothing can be created under it, not even by root")
    return {
        "root": root, "good": good, "store": store, "rollout": rollout, "ckpt": ckpt,
        "nclaw_ckpt": good / "nrun" / "checkpoint.pt", "gt": good / "gt.h5", "marker": marker,
        "precious": precious, "meshes": write_meshes(root / "meshes"),
        "hdf5": write_hdf5(root / "hdf5", store, rollout),
        "ckpts": write_checkpoints(root / "ckpts", ckpt, good / "nrun" / "checkpoint.pt", marker),
    }


@pytest.fixture
def refuse(env, capsys, tally, monkeypatch):
    """refuse(argv, *words): the command exits 2 with one line naming the words; nothing that existed changed."""

    def served(self, *a, **k):  # `meshsim view` must refuse before it serves
        raise AssertionError("the viewer started serving a bad file")

    monkeypatch.setattr(socketserver.BaseServer, "serve_forever", served)

    failures = []

    def check(argv, *words, category="other"):
        try:
            return _check(argv, *words, category=category)
        except AssertionError as err:  # collect every failing input, not only the first
            failures.append(f"{[str(a) for a in argv]}: {str(err).splitlines()[0]}")
            env["marker"].unlink(missing_ok=True)

    def _check(argv, *words, category="other"):
        before = _fingerprint(env["root"])
        capsys.readouterr()
        code = main([str(a) for a in argv])
        out = capsys.readouterr()
        line = assert_one_error_line(code, out.err, *words)
        after = _fingerprint(env["root"])
        changed = {k for k, v in before.items() if after.get(k) != v}
        assert not changed, f"{argv} changed {changed}"
        assert not env["marker"].exists(), "a checkpoint's pickled code ran"
        tally[f"bad_input.{category}"] += 1
        return line

    yield check
    assert not failures, f"{len(failures)} bad inputs not refused cleanly:\n" + "\n".join(failures)


SCENE_WITH_BODY = "steps: 2\nspacing: 0.1\nres: 8\nbodies:\n  - {{material: jelly, shape: '{path}', size: 0.3}}\n"


def test_unusable_meshes_are_refused_by_mesh_info_and_as_nclaw_body_shapes(env, refuse, tmp_path):
    for name in UNUSABLE_MESHES:
        path = env["meshes"][name]
        refuse(["mesh", "info", path], path.name, category="mesh")
        scene = tmp_path / f"{name}.yaml"
        scene.write_text(SCENE_WITH_BODY.format(path=path))
        refuse(["nclaw", "generate", "--out", tmp_path / f"{name}.h5", "--material", "jelly", "--config", scene],
               path.name, category="mesh")
        assert not (tmp_path / f"{name}.h5").exists()


def test_defective_meshes_are_named_by_mesh_info_and_refused_as_bodies(env, refuse, capsys, tally, tmp_path):
    for name, (_, defect) in DEFECTIVE_MESHES.items():
        path = env["meshes"][name]
        assert main(["mesh", "info", "--json", str(path)]) == 0  # inspection is the tool's job: report, exit 0
        import json

        info = json.loads(capsys.readouterr().out)
        assert info["defects"][defect], (name, info["defects"])
        tally["bad_input.mesh_defects_reported"] += 1
        scene = tmp_path / f"{name}.yaml"
        scene.write_text(SCENE_WITH_BODY.format(path=path))
        refuse(["nclaw", "generate", "--out", tmp_path / f"{name}.h5", "--material", "jelly", "--config", scene],
               path.name, category="mesh")


def _hdf5_consumers(env, bad: Path, as_rollout: bool):
    p = env["precious"]
    yield ["data", "inspect", bad]
    yield ["view", bad, "--no-browser"]
    yield ["export", bad, "--format", "vtkhdf", "-o", p / "out.vtkhdf", "--force"]
    if as_rollout:
        yield ["eval", bad, "--json", p / "report.json", "--plot", p / "plot.png"]
    else:
        yield ["rollout", env["ckpt"], bad, "-o", p / "out.h5", "--force", "--device", "cpu"]


def test_damaged_hdf5_files_are_refused_by_every_reader(env, refuse, tmp_path):
    for name, (store_variant, rollout_variant, words) in env["hdf5"].items():
        for path, as_rollout in ((store_variant, False), (rollout_variant, True)):
            if path is None:
                continue
            for argv in _hdf5_consumers(env, path, as_rollout):
                refuse(argv, path.name, *words, category="hdf5")
        if store_variant is not None:
            cfg = tmp_path / f"{name}.yaml"
            cfg.write_text(TRAIN_YAML.format(data=store_variant))
            refuse(["train", cfg, "--run-dir", tmp_path / f"run_{name}"], store_variant.name, category="hdf5")


PYTHON_TAG = "!!python/object/apply:os.system ['touch {marker}']\n"


def test_bad_configs_are_refused_by_train_generate_and_nclaw(env, refuse, tmp_path):
    marker = env["marker"]
    good_yaml = TRAIN_YAML.format(data=env["store"])
    yamls = {  # train recipes: unknown key, wrong type, impossible values, broken or hostile YAML
        "unknown_key": (good_yaml + "stepz: 3\n", "stepz"),
        "wrong_type": (good_yaml.replace("steps: 20", "steps: many"), "steps"),
        "negative_steps": (good_yaml.replace("steps: 20", "steps: -3"), "steps"),
        "negative_lr": (good_yaml + "optim: {lr: -0.001}\n", "lr"),
        "zero_batch": (good_yaml + "batch_size: 0\n", "batch_size"),
        "nested_unknown": (good_yaml.replace("kind: mgn", "kind: mgn, latnet: 3"), "latnet"),
        "unknown_model_kind": (good_yaml.replace("kind: mgn", "kind: transformer"), "kind"),
        "yaml_syntax": ("train_data: [a\nsteps: {\n", "yaml"),
        "yaml_list": ("- 1\n- 2\n", "mapping"),
        "python_tag": ("steps: " + PYTHON_TAG.format(marker=marker), ""),
    }
    for name, (text, word) in yamls.items():
        cfg = tmp_path / f"train_{name}.yaml"
        cfg.write_text(text)
        refuse(["train", cfg, "--run-dir", tmp_path / f"run_{name}"], *([word] if word else []), category="config")
        assert not (tmp_path / f"run_{name}" / "checkpoints").exists()
    cfg = tmp_path / "ok.yaml"
    cfg.write_text(good_yaml)
    for override, word in [("steps=-1", "steps"), ("model.latent=0", "latent"), ("optim.lr=abc", "lr"),
                           ("model.bogus=1", "bogus"), ("seed=1.5", "seed"), ("device=tpu", "device")]:
        refuse(["train", cfg, override, "--run-dir", tmp_path / "run_o"], word, category="config")

    gen = env["precious"] / "gen.h5"  # an existing, valid store: a refused command must leave it as it is
    scene = tmp_path / "scene.yaml"
    for args, word in [
        (["youngs_modulus=[-1e9,1e9]"], "youngs_modulus"), (["poisson_ratio=[0.5,0.5]"], "poisson"),
        (["poisson_ratio=[0.3,0.7]"], "poisson"), (["density=[0,1000]"], "density"), (["duration=-1"], "duration"),
        (["num_frames=0"], "num_frames"), (["cells_x=abc"], "cells_x"), (["cfl=0"], "cfl"), (["bogus=1"], "bogus"),
        (["friction=-1"], "friction"), (["ball_radius=[0.02]"], "ball_radius"),
    ]:
        refuse(["generate", "impact-plate-2d", "--num", "1", "--out", gen, *args], word, category="config")
    for scene_name in ("drop-test-3d", "deforming-plate-3d"):
        for args, word in [(["cfl=0"], "cfl"), (["cfl=1.5"], "cfl"), (["friction=-1"], "friction")]:
            refuse(["generate", scene_name, "--num", "1", "--out", gen, *args], word, category="config")
    scene.write_text("material: " + PYTHON_TAG.format(marker=marker))
    refuse(["generate", "impact-plate-2d", "--num", "1", "--out", gen, "--config", scene], category="config")
    scene.write_text("cells_y: -2\n")
    refuse(["generate", "impact-plate-2d", "--num", "1", "--out", gen, "--config", scene], "cells_y",
           category="config")

    nclaw_out = tmp_path / "n.h5"
    for sets, word in [(["dt=-1e-4"], "dt"), (["dt=0"], "dt"), (["spacing=0"], "spacing"), (["steps=-5"], "steps"),
                       (["res=abc"], "res"), (["colour=red"], "colour"), (["gravity=[1]"], "gravity"),
                       (["wall=bouncy"], "wall")]:
        refuse(["nclaw", "generate", "--out", nclaw_out, "--material", "jelly", *[f"--set={s}" for s in sets]],
               word, category="config")
        assert not nclaw_out.exists()
    scene.write_text("res: " + PYTHON_TAG.format(marker=marker))
    refuse(["nclaw", "generate", "--out", nclaw_out, "--material", "jelly", "--config", scene], category="config")
    run = tmp_path / "nrun"
    for sets, word in [(["epochs=0"], "epochs"), (["lr=-1"], "lr"), (["widths=[0]"], "widths"),
                       (["teacher_start=5", "teacher_end=2"], "teacher"), (["bogus=1"], "bogus"),
                       (["trajectory=nope"], "nope"), (["frames=1"], "frames"), (["update=never"], "update")]:
        refuse(["nclaw", "train", "--data", env["gt"], "--out", run, *[f"--set={s}" for s in sets]], word,
               category="config")
    scene.write_text("epochs: " + PYTHON_TAG.format(marker=marker))
    refuse(["nclaw", "train", "--data", env["gt"], "--out", run, "--config", scene], category="config")
    for command in (["train", "--data", env["gt"], "--out", run],
                    ["generate", "--out", nclaw_out, "--material", "jelly"]):
        refuse(["nclaw", *command, "--threads", "0"], "threads", category="config")
    assert not (run / "checkpoint.pt").exists()


def test_hostile_and_foreign_checkpoints_are_refused_and_never_executed(env, refuse, tmp_path):
    import shutil

    p = env["precious"]
    resume_run = tmp_path / "resume"
    shutil.copytree(env["good"] / "run", resume_run)
    cfg = env["good"] / "train.yaml"
    for name, path in env["ckpts"].items():
        words = [] if name.startswith("nclaw_") else [path.name]
        if name != "hcmt_for_nclaw.pt":  # every other file is bad for the learned simulators
            refuse(["rollout", path, env["store"], "-o", p / "out.h5", "--force", "--device", "cpu"], *words,
                   category="checkpoint")
            # a hostile last.pt in a run folder: --resume must refuse it without running it
            shutil.copyfile(path, resume_run / "checkpoints" / "last.pt")
            refuse(["train", cfg, "--resume", "--run-dir", resume_run, "steps=40"], "last.pt", category="checkpoint")
        if name != "nclaw_for_hcmt.pt":  # ... and every other file is bad for NCLaw
            refuse(["nclaw", "eval", "--checkpoint", path, "--out", p / "report.json", "--steps", "2",
                    "--suite", "reconstruction"], category="checkpoint")


def test_missing_inputs_and_unwritable_outputs(env, refuse, tmp_path):
    p, missing = env["precious"], tmp_path / "no_such_file"
    under_file = p / "a_file"  # a regular file: no folder can be created below it, whatever the permissions
    cfg = env["good"] / "train.yaml"
    cases = [
        (["mesh", "info", missing], "no_such_file"),
        (["data", "inspect", missing], "no_such_file"),
        (["rollout", missing, env["store"], "-o", p / "out.h5", "--force"], "no_such_file"),
        (["rollout", env["ckpt"], missing, "-o", p / "out.h5", "--force"], "no_such_file"),
        (["eval", missing], "no_such_file"),
        (["view", missing, "--no-browser"], "no_such_file"),
        (["export", missing, "--format", "vtkhdf"], "no_such_file"),
        (["render", missing, "-o", tmp_path / "v.mp4"], "no_such_file"),
        (["train", missing], "no_such_file"),
        (["generate", "impact-plate-2d", "--out", p / "gen.h5", "--config", missing], "no_such_file"),
        (["nclaw", "train", "--data", missing, "--out", tmp_path / "r"], "no_such_file"),
        (["nclaw", "eval", "--checkpoint", missing], "no_such_file"),
        (["data", "import", missing, "-o", tmp_path / "imp.h5"], "no_such_file"),
        (["generate", "impact-plate-2d", "--num", "1", "--out", under_file / "g.h5"], "a_file"),
        (["rollout", env["ckpt"], env["store"], "-o", under_file / "r.h5"], "a_file"),
        (["rollout", env["ckpt"], env["store"], "-o", p], "precious"),  # an existing folder is not a file
        (["eval", env["rollout"], "--json", under_file / "r.json"], "a_file"),
        (["eval", env["rollout"], "--plot", under_file / "r.png"], "a_file"),
        (["export", env["rollout"], "--format", "vtkhdf", "-o", under_file / "x.vtkhdf"], "a_file"),
        (["export", env["rollout"], "--format", "pvd", "-o", under_file / "x.pvd"], "a_file"),
        (["train", cfg, "--run-dir", under_file / "run"], "a_file"),
        (["nclaw", "generate", "--out", under_file / "n.h5", "--material", "jelly"], "a_file"),
        (["nclaw", "train", "--data", env["gt"], "--out", under_file / "r"], "a_file"),
        (["nclaw", "eval", "--checkpoint", env["nclaw_ckpt"], "--out", under_file / "m.json", "--steps", "2",
          "--suite", "reconstruction"], "a_file"),
        (["render", env["rollout"], "-o", under_file / "v.mp4"], "a_file"),
        (["data", "import", env["good"], "-o", under_file / "imp.h5"], ""),
    ]
    for argv, word in cases:
        refuse(argv, *([word] if word else []), category="path")
