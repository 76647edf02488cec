"""Objects pickle and survive fork; reads in worker processes equal serial reads."""

from __future__ import annotations

import multiprocessing
import pickle

import numpy as np
import pytest
from dicomweb_client import DICOMfileClient, DICOMwebClient

import dicomslide
from dicomslide.cache import FrameCache, get_default_cache
from dicomslide.testing import synthetic


@pytest.fixture(scope="module")
def truth(tmp_path_factory) -> synthetic.SyntheticSlide:
    return synthetic.write_slide(tmp_path_factory.mktemp("procs"), "concatenation")


def _boxes(count: int, seed: int = 0) -> list[tuple[int, int, int, int]]:
    rng = np.random.default_rng(seed)
    return [
        (int(rng.integers(-20, 290)), int(rng.integers(-20, 460)), 40, 50)
        for _ in range(count)
    ]


def _read(
    matrix: dicomslide.TotalPixelMatrix, box: tuple[int, int, int, int]
) -> np.ndarray:
    row, column, height, width = box
    return matrix.read_region((row, column), (height, width))


def _serial(truth, boxes) -> list[np.ndarray]:
    slide = dicomslide.find_slides(truth.folder, correct_color=False)[0]
    matrix = slide.get_volume_images()[0].get_total_pixel_matrix()
    return [_read(matrix, box) for box in boxes]


def test_pickle_round_trip_of_every_object(truth):
    slide = dicomslide.find_slides(truth.folder, correct_color=False)[0]
    image = slide.get_volume_images()[0]
    matrix = image.get_total_pixel_matrix()
    sampler = dicomslide.TotalPixelMatrixSampler(matrix, (64, 64), padding=2)
    expected = matrix[10:100, 20:300]
    for obj in (slide, image, matrix, sampler):
        copy = pickle.loads(pickle.dumps(obj))
        assert type(copy) is type(obj)
    slide2 = pickle.loads(pickle.dumps(slide))
    assert slide2 == slide and slide2.num_levels == slide.num_levels
    matrix2 = pickle.loads(pickle.dumps(matrix))
    np.testing.assert_array_equal(matrix2[10:100, 20:300], expected)
    sampler2 = pickle.loads(pickle.dumps(sampler))
    np.testing.assert_array_equal(sampler2[3], sampler[3])


def test_pickling_leaves_a_users_file_client_working(truth):
    client = DICOMfileClient(url=truth.folder.as_uri(), in_memory=True)
    slide = dicomslide.find_slides(client, correct_color=False)[0]
    copy = pickle.loads(pickle.dumps(slide))
    region = copy.get_image_region((0, 0), 0, (50, 50))
    np.testing.assert_array_equal(region, truth.levels[0].pixels[0, 0, :50, :50])
    # the user's client (and its in-memory index) is untouched
    assert len(client.search_for_series()) == 1
    assert len(dicomslide.find_slides(client)) == 1


def test_caches_do_not_travel():
    cache = FrameCache(1000)
    cache.put("key", np.zeros(10, np.uint8))
    copy = pickle.loads(pickle.dumps(cache))
    assert len(copy) == 0 and copy.max_bytes == 1000
    assert pickle.loads(pickle.dumps(get_default_cache())) is get_default_cache()


def _worker_read(args):
    matrix, boxes = args
    return [_read(matrix, box) for box in boxes]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_workers_read_what_serial_reads_read(truth, method):
    boxes = _boxes(48)
    expected = _serial(truth, boxes)
    slide = dicomslide.find_slides(truth.folder, correct_color=False)[0]
    matrix = slide.get_volume_images()[0].get_total_pixel_matrix()
    matrix[0:100, 0:100]  # the parent has opened files and started threads
    context = multiprocessing.get_context(method)
    with context.Pool(3) as pool:
        chunks = pool.map(_worker_read, [(matrix, boxes[i::4]) for i in range(4)])
    got = [None] * len(boxes)
    for i, chunk in enumerate(chunks):
        for j, region in enumerate(chunk):
            got[i + 4 * j] = region
    for region, reference in zip(got, expected, strict=True):
        np.testing.assert_array_equal(region, reference)
    # the parent still reads after its children ran
    np.testing.assert_array_equal(_read(matrix, boxes[0]), expected[0])


def _read_in_child(queue, matrix, box):
    queue.put(_read(matrix, box))


def test_fork_over_dicomweb_uses_new_connections(orthanc, tmp_path):
    local = synthetic.write_slide(
        tmp_path, "sparse", uids=synthetic.SlideUIDs.new("FORK")
    )
    orthanc.upload(local.files)
    client = DICOMwebClient(orthanc.dicomweb_url)
    slide = dicomslide.find_slides(
        client, study_instance_uid=local.uids.study_instance_uid, correct_color=False
    )[0]
    matrix = slide.get_volume_images()[0].get_total_pixel_matrix()
    box = (64, 96, 64, 96)
    expected = _read(matrix, box)
    matrix.image._cache.clear()
    parent_session = client._session
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_read_in_child, args=(queue, matrix, box))
    child.start()
    region = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    np.testing.assert_array_equal(region, expected)
    assert client._session is parent_session  # the parent keeps its own session
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        regions = pool.map(_worker_read, [(matrix, [box])] * 2)
    for result in regions:
        np.testing.assert_array_equal(result[0], expected)


def test_metrics_count_requests_frames_and_hits(truth):
    slide = dicomslide.find_slides(truth.folder, correct_color=False)[0]
    image = slide.get_volume_images()[0]
    image._cache.clear()
    before = image.metrics
    image.get_image_region((0, 0), (64, 96))
    after = image.metrics
    assert after["requests"] - before["requests"] == 1
    assert after["frames_fetched"] - before["frames_fetched"] == 1
    assert after["bytes_fetched"] > before["bytes_fetched"]
    image.get_image_region((0, 0), (64, 96))
    assert image.metrics["cache_hits"] - after["cache_hits"] == 1
    assert slide.metrics["frames_fetched"] >= image.metrics["frames_fetched"]


def test_torch_dataloader_over_a_sampler(truth):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    from torch.utils.data import DataLoader, Dataset

    slide = dicomslide.find_slides(truth.folder, correct_color=False)[0]
    matrix = slide.get_volume_images()[0].get_total_pixel_matrix()
    sampler = dicomslide.TotalPixelMatrixSampler(matrix, (64, 64), padding=4)

    class Patches(Dataset):
        def __len__(self) -> int:
            return len(sampler)

        def __getitem__(self, index: int):
            return torch.from_numpy(np.ascontiguousarray(sampler[index]))

    loader = DataLoader(Patches(), batch_size=4, num_workers=2)
    batches = torch.cat(list(loader))
    assert batches.shape == (len(sampler), 72, 72, 3)
    expected = np.stack([sampler[i] for i in range(len(sampler))])
    np.testing.assert_array_equal(batches.numpy(), expected)


def test_pickle_after_a_colour_corrected_read(tmp_path):
    truth = synthetic.write_slide(tmp_path, "rgb_full", icc="wide")
    slide = dicomslide.find_slides(truth.folder)[0]  # correct_color=True
    region = slide.get_image_region((0, 0), 0, (40, 40))
    region[0, 0] = 0  # colour-corrected reads are writable too
    copy = pickle.loads(pickle.dumps(slide))
    np.testing.assert_array_equal(
        copy.get_image_region((0, 0), 0, (40, 40))[1:], region[1:]
    )
