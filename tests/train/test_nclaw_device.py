"""NCLaw training runs on every device present (the MPM, the model and the frames together on it)."""

import pytest
import torch

from meshsim.cli import main
from meshsim.errors import ConfigError
from meshsim.models.checkpoint import read_nclaw_checkpoint
from meshsim.train.nclaw import NCLawTrainConfig, model_from_checkpoint, train_nclaw


@pytest.fixture(scope="module")
def jelly(tmp_path_factory):
    path = tmp_path_factory.mktemp("nclaw") / "gt.h5"
    assert main(["nclaw", "generate", "--out", str(path), "--material", "jelly", "--set", "steps=6",
                 "--set", "spacing=0.1", "--set", "res=8"]) == 0
    return str(path)


def test_an_epoch_on_the_device_matches_the_cpu(jelly, tmp_path, device):
    config = {"data": jelly, "epochs": 2, "teacher_start": 3, "teacher_end": 3, "widths": [8]}
    on_cpu = train_nclaw(NCLawTrainConfig(**config, device="cpu"), tmp_path / "cpu", progress=False)
    on_device = train_nclaw(NCLawTrainConfig(**config, device=device), tmp_path / device, progress=False)
    # two epochs: the second one's loss depends on the first one's update, so the gradients agree too
    assert on_device["loss"] == pytest.approx(on_cpu["loss"], rel=1e-3)
    model, cfg = model_from_checkpoint(read_nclaw_checkpoint(on_device["checkpoint"]))  # loads on the CPU
    assert cfg.device == device and all(p.device.type == "cpu" for p in model.parameters())
    # the same run resumes on another device: the device is where it runs, not what it trains
    done = train_nclaw(NCLawTrainConfig(**config, device="cpu"), tmp_path / device, progress=False)
    assert done["epochs"] == 2


def test_a_device_that_is_no_device_is_refused():
    with pytest.raises(ConfigError, match="device must be"):
        NCLawTrainConfig(device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            train_nclaw(NCLawTrainConfig(data="x.h5", device="cuda"), "unused", progress=False)
