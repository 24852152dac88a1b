"""Analysis in the page (headless Chromium): probe plot, clip plane, legends, pane labels, divider, shared camera
and playback speed. Two pictures are compared with small stored references (tests/viewer/reference/, within a
tolerance, not pixel for pixel); MESHSIM_UPDATE_REFERENCE=1 rewrites them."""

import base64
import io
import os
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from meshsim.viewer.browser import open_page

from meshsim.datasets import TrajectoryFile

from .test_browser import BACKGROUND, drawn_fraction, snapshot
from .test_probe import write_labelled

pytestmark = pytest.mark.browser
REFERENCE = Path(__file__).parent / "reference"
GT_RGB, PRED_RGB, CURSOR_RGB = (0xE6, 0xE6, 0xE6), (0xF0, 0xA3, 0x5E), (0x5E, 0xC8, 0xF0)  # plot.js colours
DIVIDER_RGB = (0x8A, 0x8F, 0x99)


def png(data_url) -> np.ndarray:
    return iio.imread(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])), extension=".png")[..., :3].astype(int)


def near(image, rgb, tol=24):
    return np.abs(image - np.array(rgb)).max(axis=2) <= tol


def coarse(image, block=4):
    """Block means: small shifts of anti-aliased lines and text change these little."""
    h, w = (s - s % block for s in image.shape[:2])
    return image[:h, :w].reshape(h // block, block, w // block, block, 3).mean(axis=(1, 3))


def compare_with_reference(image, name, tol_mean=4.0, tol_p99=40.0):
    """Mean and 99th percentile of |difference| of the 4x4 block means, in 0..255 units."""
    path = REFERENCE / name
    small = coarse(image).round().astype(np.uint8)
    if os.environ.get("MESHSIM_UPDATE_REFERENCE") == "1" or not path.exists():
        REFERENCE.mkdir(exist_ok=True)
        iio.imwrite(path, small)
        if os.environ.get("MESHSIM_UPDATE_REFERENCE") != "1":
            pytest.fail(f"reference {path} was missing and has been written; check it and rerun")
    reference = iio.imread(path).astype(float)
    assert reference.shape == small.shape, f"{name}: size {small.shape[:2]} != reference {reference.shape[:2]}"
    diff = np.abs(small.astype(float) - reference)
    assert diff.mean() <= tol_mean and np.percentile(diff, 99) <= tol_p99, (diff.mean(), np.percentile(diff, 99))


@pytest.fixture(scope="module")
def page(browser, tri_server):
    with open_page(browser, tri_server.url, 900, 560) as page:
        yield page
        assert page.errors == []


@pytest.fixture(scope="module")
def tri(tri_rollout):
    with TrajectoryFile(tri_rollout) as store:
        return store.read("00000")


def test_panes_are_labelled_divided_and_timed(page):
    assert page.evaluate("viewer.labels") == ["ground truth", "prediction (learned)"]
    assert page.locator("#label-pred").inner_text() == "prediction (learned)" and page.locator("#divider").is_visible()
    image = snapshot(page)
    middle = image.shape[1] // 2
    assert near(image[60:-90, middle - 1 : middle + 1], DIVIDER_RGB, 4).all()  # the divider, also in PNGs
    page.evaluate("viewer.setFrame(3)")
    assert page.evaluate("viewer.clock") == "t = 30 ms  (frame 3 / 11)"  # dt = 10 ms: simulated time in ms
    # speed reads as frames per second and as simulated time per wall-clock time
    options = page.locator("#speed option").all_inner_texts()
    assert "10 fps · 1/10 real time" in options and "1 fps · 1/100 real time" in options
    page.evaluate("viewer.setSpeed(5)")
    assert page.evaluate("viewer.timeRatio") == pytest.approx(0.05)
    page.evaluate("viewer.setFrame(0)")
    page.evaluate("viewer.play()")
    page.wait_for_timeout(700)
    page.evaluate("viewer.pause()")
    assert 1 <= page.evaluate("viewer.frame") <= 5  # 5 fps for 0.7 s: at most 4 steps (slower is allowed)
    page.evaluate("viewer.setSpeed(10)")


def test_click_probes_the_node_under_the_pointer_and_the_plot_reads(page, tri):
    page.evaluate("viewer.setFrame(6)")
    page.evaluate("viewer.setProbe(0, 'x')")  # the plot opens under the view, which gets shorter
    page.wait_for_timeout(100)
    x, y = page.evaluate("viewer.project(1, 57)")  # node 57 in the prediction pane
    box = page.locator("#view").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_function("viewer.probe.node !== 0")
    picked = page.evaluate("viewer.probe.node")
    px, py = page.evaluate(f"viewer.project(1, {picked})")
    assert (px - x) ** 2 + (py - y) ** 2 <= 12**2 and page.locator("#probe").is_visible()
    assert page.evaluate("viewer.probe.quantity") == "x"  # a click keeps the quantity chosen

    assert page.evaluate("viewer.setProbe(57, 'y')") is True
    data = page.evaluate("viewer.probe.data")
    np.testing.assert_allclose(data["series"]["gt"], tri.world_pos[:, 57, 1], rtol=1e-5)
    np.testing.assert_allclose(data["series"]["pred"], tri.pred_world_pos[:, 57, 1], rtol=1e-5)
    plot = png(page.evaluate("viewer.plotDataURL()"))
    assert near(plot, GT_RGB, 12).sum() > 100 and near(plot, PRED_RGB, 12).sum() > 100
    cursor = np.flatnonzero(near(plot[40:-40], CURSOR_RGB, 12).sum(axis=0) > 40)  # a vertical line
    left, right = 64, plot.shape[1] - 180  # plot.js margins
    assert abs(cursor.mean() - (left + 6 / 11 * (right - left))) < 3  # at frame 6 of 0..11
    page.evaluate("viewer.setFrame(11)")
    moved = np.flatnonzero(near(png(page.evaluate("viewer.plotDataURL()"))[40:-40], CURSOR_RGB, 12).sum(axis=0) > 40)
    assert abs(moved.mean() - right) < 3
    page.evaluate("viewer.setFrame(6)")
    compare_with_reference(plot, "probe_plot.png")
    # the marker shows the probed node in both panes
    view = snapshot(page)
    assert near(view, (0xFF, 0x3D, 0xF0), 30).sum() >= 2 * 40
    page.locator("#view").click(position={"x": 5, "y": 5})  # focus the page (keys are ignored in inputs)
    page.keyboard.press("Escape")
    assert page.evaluate("viewer.probe") is None and page.locator("#probe").is_hidden()
    # typing a node id probes it too, with the quantity picked in the menu
    page.select_option("#probe-quantity", "speed")
    page.fill("#probe-node", "21")
    page.press("#probe-node", "Enter")
    page.wait_for_function("viewer.probe !== null && viewer.probe.node === 21")
    assert page.evaluate("viewer.probe.quantity") == "speed" and page.locator("#probe").is_visible()
    page.evaluate("viewer.closeProbe()")


def test_error_legend_in_mm_fixed_or_per_frame(page, tri):
    page.evaluate("viewer.setField('error')")
    page.evaluate("viewer.setFrame(3)")
    fixed = page.evaluate("viewer.legend")
    lo, hi = page.evaluate("viewer.range")
    assert fixed["unit"] == "mm" and fixed["mode"] == "fixed"
    assert fixed["lo"] == 0 and fixed["hi"] == pytest.approx(hi * 1000)
    page.evaluate("viewer.setRangeMode('frame')")
    per_frame = page.evaluate("viewer.legend")
    error = np.linalg.norm(tri.pred_world_pos[3] - tri.world_pos[3], axis=1)
    assert per_frame["mode"] == "frame" and per_frame["lo"] == 0
    assert per_frame["hi"] == pytest.approx(error.max() * 1000, rel=1e-5) and per_frame["hi"] < fixed["hi"]
    page.evaluate("viewer.setRangeMode('fixed')")


def test_node_types_get_a_categorical_legend_with_names(page):
    page.evaluate("viewer.setField('node_type')")
    legend = page.evaluate("viewer.legend")
    assert [item["label"] for item in legend["items"]] == ["0 normal", "3 handle"]
    handle_srgb = np.array(legend["items"][1]["srgb"]) * 255
    canvas = png(page.evaluate("document.getElementById('legend').toDataURL()"))
    assert near(canvas, handle_srgb, 3).sum() > 100  # the swatch
    assert page.evaluate("document.getElementById('legend').height") == 26 + 2 * 16
    page.evaluate("viewer.setField('error')")


def test_dragging_one_pane_turns_both(page):
    before = snapshot(page)
    box = page.locator("#view").bounding_box()
    x, y = box["x"] + 0.75 * box["width"], box["y"] + 0.5 * box["height"]  # in the prediction pane
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 60, y + 20, steps=4)
    page.mouse.up()
    page.wait_for_timeout(100)
    after = snapshot(page)
    half = before.shape[1] // 2
    for pane in (slice(0, half), slice(half, None)):
        assert (np.abs(after[60:-90, pane] - before[60:-90, pane]).sum(axis=2) > 30).mean() > 0.01
    assert page.evaluate("viewer.probe") is None  # a drag is not a click: no probe


def test_clip_plane_opens_a_tetrahedral_slab(browser, tet_rollout, serve_file):
    with open_page(browser, serve_file(tet_rollout).url + "&field=displacement", 800, 400) as page:
        page.evaluate("viewer.setFrame(4)")
        whole = snapshot(page)
        surface = page.evaluate("viewer.stage.panes[0].object.geometry.index.count")
        page.evaluate("viewer.setClip(0, 0.5)")  # keep x <= half of the slab
        assert page.evaluate("viewer.clip") == {"axis": 0, "offset": 0.5, "flip": False}
        clipped = snapshot(page)
        faces = page.evaluate("viewer.stage.panes[0].object.geometry.index.count")
        assert faces > surface  # interior faces are drawn while clipping
        body = (slice(40, -80), slice(None))
        assert 0.3 < drawn_fraction(clipped[body]) / drawn_fraction(whole[body]) < 0.8
        compare_with_reference(clipped, "clip_tet.png")
        # nodes cut away cannot be picked: every pick lands on the kept side
        n = page.evaluate("viewer.info.num_nodes")
        xs = np.array(page.evaluate("viewer.drawnPositions(0)")).reshape(n, 3)[:, 0]
        cut = xs.min() + 0.5 * (xs.max() - xs.min())
        picks = page.evaluate("""() => { const out = [];
            for (let x = 0; x < 400; x += 20) for (let y = 40; y < 360; y += 20) out.push(viewer.pick(x, y));
            return out.filter((n) => n !== null); }""")
        assert picks and all(xs[i] <= cut + 1e-6 for i in picks)
        page.evaluate("viewer.setWireframe(true)")
        assert (np.abs(snapshot(page) - clipped).sum(axis=2) > 30).mean() > 0.01
        page.evaluate("viewer.setWireframe(false)")
        page.evaluate("viewer.setClip(0, 0.5, true)")  # the other half
        flipped = snapshot(page)
        assert (np.abs(flipped - clipped).sum(axis=2) > 30).mean() > 0.02
        page.evaluate("viewer.setClip(null)")
        assert page.evaluate("viewer.stage.panes[0].object.geometry.index.count") == surface
        assert np.abs(snapshot(page) - whole).max() <= 2
        assert page.errors == []


def test_a_study_file_is_one_pane_labelled_learned(browser, tmp_path, serve_file):
    path = write_labelled(tmp_path / "study.h5", False, {"source": "learned"})
    with open_page(browser, serve_file(path).url, 600, 300) as page:
        assert page.evaluate("viewer.labels") == ["prediction (learned)"]
        assert page.locator("#label-gt").inner_text() == "prediction (learned)"
        assert page.locator("#divider").is_hidden() and page.locator("#label-pred").is_hidden()
        assert page.errors == []


def test_background_is_what_the_tests_assume():
    assert tuple(BACKGROUND) == (0x1D, 0x1F, 0x24)
