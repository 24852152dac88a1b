"""`meshsim render`: every frame exactly once, in a file that decodes."""

import imageio
import imageio.v3 as iio
import numpy as np
import pytest
from meshsim.viewer import browser
from meshsim.viewer.render import parse_size, render_video

from meshsim.cli import main
from meshsim.errors import ConfigError


@pytest.mark.browser
def test_render_mp4_and_gif_decode_with_every_frame(tet_rollout, tmp_path, capsys):
    assert main(["render", tet_rollout, "-o", str(tmp_path / "tet.mp4"), "--size", "320x240", "--fps", "12"]) == 0
    assert "8 frames" in capsys.readouterr().out
    with imageio.get_reader(tmp_path / "tet.mp4") as reader:
        frames = [frame for frame in reader]
        assert reader.get_meta_data()["fps"] == pytest.approx(12)
    assert len(frames) == 8 and frames[0].shape == (240, 320, 3)
    assert np.abs(frames[-1].astype(int) - frames[0].astype(int)).mean() > 0.5  # the mesh moved

    result = render_video(tet_rollout, tmp_path / "tet.gif", size=(160, 120), color="")
    gif = iio.imread(tmp_path / "tet.gif")
    assert result["frames"] == 8 and gif.shape[:3] == (8, 120, 160)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tet.gif", "tet.mp4"]  # no temporaries left


@pytest.mark.browser
def test_render_png_frames_folder(particles_gt, tmp_path):
    render_video(particles_gt, tmp_path / "frames", size=(200, 100))
    names = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert names == [f"frame_{t:05d}.png" for t in range(6)]
    assert iio.imread(tmp_path / "frames" / names[0]).shape[:2] == (100, 200)


def test_missing_chromium_is_one_clear_line(tri_rollout, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MESHSIM_CHROMIUM", raising=False)
    monkeypatch.setattr(browser, "DEFAULT_CHROMIUM", str(tmp_path / "also-missing"))
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    assert main(["render", tri_rollout, "-o", str(tmp_path / "x.mp4")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "chromium not found" in err and "apt-get install chromium" in err
    assert not (tmp_path / "x.mp4").exists()
    monkeypatch.setenv("MESHSIM_CHROMIUM", str(tmp_path / "typo"))
    assert main(["render", tri_rollout, "-o", str(tmp_path / "x.mp4")]) == 2
    assert "MESHSIM_CHROMIUM" in capsys.readouterr().err


def test_bad_render_options_are_refused_before_starting(tri_rollout, tmp_path):
    with pytest.raises(ConfigError, match="WIDTHxHEIGHT"):
        parse_size("big")
    with pytest.raises(ConfigError, match="even"):
        render_video(tri_rollout, tmp_path / "x.mp4", size=(321, 240))
    with pytest.raises(ConfigError, match="fps"):
        render_video(tri_rollout, tmp_path / "x.gif", fps=0)
    with pytest.raises(ConfigError, match=r"\.mp4 or \.gif"):
        render_video(tri_rollout, tmp_path / "x.avi")
    (tmp_path / "taken.gif").write_bytes(b"keep")
    with pytest.raises(Exception, match="--force"):
        render_video(tri_rollout, tmp_path / "taken.gif")
    assert (tmp_path / "taken.gif").read_bytes() == b"keep"
