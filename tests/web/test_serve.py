"""`lwgan serve` in a real browser: Debian's chromium, driven by Playwright, makes a 10-frame imitation through the page."""

import io
import ipaddress
import re
import shutil
import socket
import subprocess
import sys
from urllib.parse import urljoin

import av
import numpy as np
import pytest
from PIL import Image

from lwgan.bundled import bundled_photo
from lwgan.web.jobs import SynthesisService

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "0.0.0.0")
_recording: list | None = None  # outward connections while a server runs (the audit hook below cannot be removed, only muted)


def _record_outward(event: str, arguments: tuple) -> None:
    """sys audit hook: note every connection or name lookup that leaves this machine while _recording is a list."""
    if _recording is None:
        return
    if event == "socket.connect" and isinstance(arguments[1], tuple):
        host = str(arguments[1][0])
    elif event == "socket.getaddrinfo":
        host = str(arguments[0])
    else:
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback or host == "0.0.0.0"
    except ValueError:
        loopback = host in LOOPBACK_NAMES
    if not loopback:
        _recording.append((event, host))


sys.addaudithook(_record_outward)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    """(page URL, outward connections list): `lwgan serve` with its defaults but the port and output folder, in this process."""
    global _recording
    from lwgan.web.serve import ServeConfig, start

    _recording = []
    config = ServeConfig(port=free_port(), output=str(tmp_path / "runs"))
    page = start(config, block=False)
    try:
        yield f"http://127.0.0.1:{config.port}/", _recording
    finally:
        page.close()
        _recording = None


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (Debian: apt-get install chromium; `bash tools/setup.sh test` installs it)")
def test_page_imitates_the_bundled_photo_in_chromium(served, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, outward = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            requested = []
            page.on("request", lambda request: requested.append(request.url))
            page.goto(url)
            expect(page.get_by_role("tab", name="Imitate")).to_be_visible()
            page.locator("#imitate-run").click()  # no photo yet: an error box with the API's message
            expect(page.locator(".toast-body")).to_contain_text("photos: upload 1 to 8 files, got 0")
            page.locator(".toast-close").click()
            expect(page.locator("#photos")).to_contain_text("at most 50 MB each")  # the upload limit, max_upload_mb
            page.locator("#use-bundled-photo").click()  # the button fills in the bundled photo; cleared again for the upload
            expect(page.locator("#photos")).to_contain_text(bundled_photo().stem)
            page.locator("#photos").get_by_role("button", name="Clear").click()
            expect(page.locator("#photos")).not_to_contain_text(bundled_photo().stem)
            page.locator("#photos input[type=file]").set_input_files(str(bundled_photo()))
            expect(page.locator("#photos")).to_contain_text(bundled_photo().stem)
            page.locator("#image-size").get_by_label("128").check()
            frames = page.locator("#imitate-frames input[type=number]")
            frames.fill("10")
            frames.press("Enter")
            page.locator("#imitate-run").click()
            expect(page.locator("#imitate-video .progress-level")).to_contain_text("fitting", timeout=30_000)  # the progress bar

            video = page.locator("#imitate-video video")
            expect(video).to_have_attribute("src", re.compile(r"\.mp4$"), timeout=240_000)
            summary = page.locator("#imitate-summary")
            expect(summary).to_contain_text("10 frames at 128×128 px by texture warping")
            # The browser plays it: the first frame decoded, no media error.
            page.wait_for_function("document.querySelector('#imitate-video video').readyState >= 2", timeout=30_000)
            playing = page.evaluate("(() => { const v = document.querySelector('#imitate-video video'); "
                                    "return {error: v.error && v.error.code, width: v.videoWidth, height: v.videoHeight}; })()")
            assert playing == {"error": None, "width": 128, "height": 128}

            # The file the <video> plays is an mp4 of 10 frames of 128 x 128 that PyAV decodes.
            response = page.request.get(urljoin(url, video.get_attribute("src")))
            assert response.ok, response.status
            with av.open(io.BytesIO(response.body())) as container:
                decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
            assert len(decoded) == 10 and decoded[0].shape == (128, 128, 3)
            assert np.std(decoded[0]) > 10  # a picture, not a blank frame

            # The download button offers the same file, and the fitted-mesh preview is a picture of the 128 px crop.
            download = page.locator("#imitate-download")
            expect(download).to_be_enabled()
            with page.expect_download() as started:
                download.click()
            assert started.value.suggested_filename == "imitation.mp4"
            preview = page.request.get(urljoin(url, page.locator("#imitate-fits img").get_attribute("src")))
            assert Image.open(io.BytesIO(preview.body())).size == (128, 128)

            # The other tabs share the photos and the size: a swap with the same person as donor, then 2 views.
            page.get_by_role("tab", name="Swap").click()
            page.locator("#donors input[type=file]").set_input_files(str(bundled_photo()))
            expect(page.locator("#donors")).to_contain_text(bundled_photo().stem)
            page.locator("#swap-run").click()
            expect(page.locator("#swap-image img")).to_have_attribute("src", re.compile(r"\.png$"), timeout=240_000)
            expect(page.locator("#swap-summary")).to_contain_text("1 frame at 128×128 px")
            swapped = page.request.get(urljoin(url, page.locator("#swap-image img").get_attribute("src")))
            assert Image.open(io.BytesIO(swapped.body())).size == (128, 128)
            page.get_by_role("tab", name="View").click()
            expect(page.locator("#view-count input[type=range]")).to_be_visible()
            set_slider(page, "view-count", "2")
            page.locator("#view-run").click()
            expect(page.locator("#view-video video")).to_have_attribute("src", re.compile(r"\.mp4$"), timeout=240_000)
            expect(page.locator("#view-summary")).to_contain_text("2 frames at 128×128 px")

            page.screenshot(path=str(tmp_path / "serve_screenshot.png"), full_page=True)
        finally:
            browser.close()
    # Everything came from the local server (the frontend from the gradio wheel), and the server called nobody.
    foreign = [address for address in requested if not address.startswith(url) and not address.startswith(("data:", "blob:"))]
    assert not foreign, foreign
    assert not outward, outward


def set_slider(page, element_id: str, value: str) -> None:
    """Move the gradio slider `element_id` to `value` until its number box shows it.

    Right after a tab opens, the page sometimes drops the first input (typed into the box or set on the slider), so the
    slider is set again until the box reads the value, for at most 10 tries.
    """
    from playwright.sync_api import expect

    shown = page.locator(f"#{element_id} input[type=number]")
    for attempt in range(10):
        page.locator(f"#{element_id} input[type=range]").fill(value)
        try:
            expect(shown).to_have_value(value, timeout=1000)
            return
        except AssertionError:
            if attempt == 9:
                raise


def test_uploads_over_the_limit_are_refused_naming_the_file_and_setting(tmp_path):
    service = SynthesisService(tmp_path / "runs", max_upload_mb=0.01)
    photo = tmp_path / "big.jpg"
    photo.write_bytes(bytes(20_000))
    small = tmp_path / "small.jpg"
    small.write_bytes(bytes(1_000))
    with pytest.raises(ValueError, match=r"big\.jpg is 0\.0 MB, over the limit of 0\.01 MB \(the setting max_upload_mb\)"):
        service.imitate([str(photo)], "walk", None, "smooth", 10, 128, None)
    with pytest.raises(ValueError, match="photos: upload 1 to 8 files, got 0"):
        service.view([], 8, 0.0, 128, None)
    with pytest.raises(ValueError, match="reference: .*over the limit"):
        service.imitate([str(small)], "walk", str(photo), "smooth", 10, 128, None)
    assert not (tmp_path / "runs").exists()  # refused before any work


def test_checkpoints_must_exist_and_be_configured(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoints: .*missing_export does not exist"):
        SynthesisService(tmp_path, checkpoints=[str(tmp_path / "missing_export")])
    with pytest.raises(ValueError, match="not one the page was started with"):
        SynthesisService(tmp_path).pipeline("imitate", str(tmp_path), 128)


def test_view_through_the_page_service(tmp_path):
    """The View tab's call: a 2-view video and the fitted-mesh preview, in a folder of its own under the output."""
    service = SynthesisService(tmp_path / "runs")
    views = service.view([str(bundled_photo())], 2, 10.0, 128, None)
    with av.open(str(views.media)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 2
    assert Image.open(views.fits).size == (128, 128)
    assert views.summary.startswith("2 frames at 128×128 px by texture warping")
    assert views.media.parent.parent == tmp_path / "runs"


@pytest.mark.slow
def test_swap_through_the_page_service(tmp_path):
    """The Swap tab's call (two fits and the garment parsing: about 30 s): one picture and the preview."""
    service = SynthesisService(tmp_path / "runs")
    swapped = service.swap([str(bundled_photo())], [str(bundled_photo())], "upper", 128, None)
    assert Image.open(swapped.media).size == (128, 128) and Image.open(swapped.fits).size == (128, 128)
    assert swapped.summary.startswith("1 frame at 128×128 px by texture warping")


def test_serve_command_listens_on_loopback_by_default():
    from lwgan.config import compose

    config = compose("serve", [])
    assert (config.host, config.port) == ("127.0.0.1", 7860)
    assert compose("serve", ["port=8080", "host=0.0.0.0"]).port == 8080


def test_progress_bars_made_before_the_page_close_quietly():
    """gradio patches tqdm when the page module loads; a bar made before that used to raise AttributeError when closed."""
    script = "from tqdm import tqdm\nbar = tqdm(total=1, disable=True)\nimport lwgan.web.page\nbar.close()\n"
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0 and "AttributeError" not in finished.stderr, finished.stderr[-2000:]
