"""The playback page in real headless Chromium (software WebGL), driven through its `window.viewer` hook."""

import base64
import io

import imageio.v3 as iio
import numpy as np
import pytest
from meshsim.viewer.browser import open_page

from meshsim.datasets import TrajectoryFile

pytestmark = pytest.mark.browser
BACKGROUND = np.array([0x1D, 0x1F, 0x24])


def snapshot(page) -> np.ndarray:
    url = page.evaluate("viewer.pngDataURL()")
    return iio.imread(io.BytesIO(base64.b64decode(url.split(",", 1)[1])), extension=".png")[..., :3].astype(int)


def drawn_fraction(image) -> float:
    """Share of pixels that are not background (labels and legend are small and excluded by the caller)."""
    return float((np.abs(image - BACKGROUND).sum(axis=2) > 30).mean())


def drawn(page, pane, n):
    return np.array(page.evaluate(f"viewer.drawnPositions({pane})"), np.float32).reshape(n, 3)


@pytest.fixture(scope="module")
def page(browser, tri_server):
    with open_page(browser, tri_server.url, 800, 400) as page:
        yield page
        assert page.errors == []


@pytest.fixture(scope="module")
def tri(tri_rollout):
    with TrajectoryFile(tri_rollout) as store:
        return {tid: store.read(tid) for tid in store.ids}


def test_webgl_context_and_first_frame(page, tri):
    gl = page.evaluate("""() => { const gl = viewer.glRenderer.getContext();
        const ext = gl.getExtension('WEBGL_debug_renderer_info');
        return {webgl2: gl instanceof WebGL2RenderingContext, name: gl.getParameter(ext.UNMASKED_RENDERER_WEBGL)}; }""")
    assert gl["webgl2"] and gl["name"]
    assert page.evaluate("viewer.frame") == 0 and page.evaluate("viewer.framesDrawn") >= 1
    assert page.evaluate("viewer.field") == "error"  # rollouts open coloured by error
    np.testing.assert_array_equal(drawn(page, 0, 400), tri["00000"].world_pos[0])
    np.testing.assert_array_equal(drawn(page, 1, 400), tri["00000"].pred_world_pos[0])
    assert page.evaluate("viewer.firstFrameMs") > 0


def test_both_panes_are_drawn(page):
    image = snapshot(page)
    body = image[40:-80]  # without the pane labels at the top and the clock and legend at the bottom
    half = body.shape[1] // 2
    assert drawn_fraction(body[:, :half]) > 0.03 and drawn_fraction(body[:, half:]) > 0.03


ASPECTS = """() => { const c = viewer.stage.canvas;
    return [viewer.stage.camera.aspect, c.clientWidth / 2 / c.clientHeight]; }"""


def test_camera_aspect_matches_each_pane_so_shapes_are_not_stretched(page, browser, tri_server):
    # Two panes side by side, each half the canvas wide. `meshsim render`'s page (render=1, no toolbar) once drew
    # with the whole canvas's aspect, so the impact plate's ball came out as an upright ellipse.
    aspect, pane = page.evaluate(ASPECTS)
    assert aspect == pytest.approx(pane, rel=1e-6)
    with open_page(browser, tri_server.url + "&render=1&aa=1", 960, 400) as render_page:
        aspect, pane = render_page.evaluate(ASPECTS)
        assert aspect == pytest.approx(pane, rel=1e-6) and render_page.errors == []


def test_scrubbing_moves_the_drawn_mesh(page, tri):
    before = snapshot(page)
    page.locator("#scrub").evaluate("el => { el.value = 9; el.dispatchEvent(new Event('input')); }")
    page.wait_for_function("viewer.frame === 9")
    np.testing.assert_array_equal(drawn(page, 0, 400), tri["00000"].world_pos[9])
    np.testing.assert_array_equal(drawn(page, 1, 400), tri["00000"].pred_world_pos[9])
    after = snapshot(page)
    assert (np.abs(after - before).sum(axis=2) > 30).mean() > 0.01
    assert page.evaluate("viewer.setFrame(3)") is True and page.evaluate("viewer.frame") == 3


def test_colouring_by_error_changes_the_pixels(page):
    page.evaluate("viewer.setField('')")
    plain = snapshot(page)[40:-80]
    page.evaluate("viewer.setField('error')")
    coloured = snapshot(page)[40:-80]
    half = plain.shape[1] // 2
    for pane in (slice(None, half), slice(half, None)):
        assert (np.abs(coloured[:, pane] - plain[:, pane]).sum(axis=2) > 30).mean() > 0.02
    # Neutral grey has equal channels; the viridis colours do not.
    spread = lambda img: np.ptp(img[drawn_mask(img)], axis=1).mean()  # noqa: E731
    assert spread(coloured) > spread(plain) + 20
    assert page.evaluate("viewer.range")[0] == 0


def drawn_mask(image):
    return np.abs(image - BACKGROUND).sum(axis=2) > 30


def test_keys_step_play_and_wireframe(page):
    page.evaluate("viewer.setFrame(0)")
    page.locator("#view").click()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("viewer.frame === 1")
    page.keyboard.press("End")
    page.wait_for_function("viewer.frame === 11")
    solid = snapshot(page)
    page.keyboard.press("w")
    assert (np.abs(snapshot(page) - solid).sum(axis=2) > 30).mean() > 0.01
    page.keyboard.press("w")
    page.keyboard.press("Home")
    page.wait_for_function("viewer.frame === 0")
    page.keyboard.press(" ")
    page.wait_for_function("viewer.frame >= 3", timeout=20000)
    page.keyboard.press(" ")
    stopped = page.evaluate("viewer.frame")
    page.wait_for_timeout(300)
    assert page.evaluate("viewer.frame") == stopped


def test_trajectory_picker_switches_data(page, tri):
    page.select_option("#traj", "00001")
    page.wait_for_function("viewer.info.id === '00001' && viewer.framesDrawn > 0")
    # The picker's own load may still draw its frame after ours (setFrame resolves false when a later call won):
    # ask again until frame 5 is the one drawn.
    for _ in range(50):
        if page.evaluate("viewer.setFrame(5)"):
            break
    else:
        pytest.fail("setFrame(5) kept losing to other draws")
    np.testing.assert_array_equal(drawn(page, 1, 400), tri["00001"].pred_world_pos[5])
    assert page.evaluate("viewer.error") is None


def test_particles_drawn_as_points_in_one_pane(browser, particles_gt, serve_file):
    with open_page(browser, serve_file(particles_gt).url, 600, 400) as page:
        assert page.evaluate("viewer.info.sources") == ["gt"]
        assert page.evaluate("viewer.glRenderer.info.render.points") > 0
        assert page.locator("#label-pred").is_hidden()
        assert drawn_fraction(snapshot(page)[40:-80]) > 0.01
        assert page.errors == []
