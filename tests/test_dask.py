"""Lazy Dask arrays, computed locally and on a process-based cluster."""

from __future__ import annotations

import numpy as np
import pytest
from dicomweb_client import DICOMwebClient

import dicomslide
from dicomslide.testing import synthetic

da = pytest.importorskip("dask.array", reason="Dask is an optional extra")


@pytest.fixture(scope="module")
def truth(tmp_path_factory) -> synthetic.SyntheticSlide:
    return synthetic.write_slide(tmp_path_factory.mktemp("dask"), "sparse")


def test_chunks_are_tiles_and_frames_are_read_once(truth):
    slide = dicomslide.find_slides(truth.folder, correct_color=False)[0]
    array = slide.to_dask(0)
    assert array.shape == (300, 470, 3) and array.dtype == np.uint8
    assert array.chunks[0][:4] == (64, 64, 64, 64) and array.chunks[0][-1] == 300 - 256
    assert array.chunks[1][0] == 96
    image = slide.get_volume_images()[0]
    image._cache.clear()
    before = image.metrics["frames_fetched"]
    mean = array.mean(axis=(0, 1)).compute(scheduler="threads")
    stored = int(truth.levels[0].present.sum())
    assert image.metrics["frames_fetched"] - before == stored  # each frame once
    np.testing.assert_allclose(mean, truth.levels[0].pixels[0, 0].mean(axis=(0, 1)))
    np.testing.assert_array_equal(
        array[5:77, 90:200].compute(), truth.levels[0].pixels[0, 0, 5:77, 90:200]
    )
    bigger = (
        slide.get_volume_images()[0].get_total_pixel_matrix().to_dask(tiles_per_chunk=2)
    )
    assert bigger.chunks[0][0] == 128


@pytest.fixture(scope="module")
def cluster_client():
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed is not installed"
    )
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.mark.slow
def test_reduction_on_a_process_cluster_local_folder(truth, cluster_client):
    slide = dicomslide.find_slides(truth.folder, correct_color=False)[0]
    level = slide.num_levels - 2
    array = slide.to_dask(level)
    expected = slide.get_image_region(
        (0, 0), level, slide.total_pixel_matrix_dimensions[level]
    )
    total = cluster_client.compute(array.astype(np.int64).sum(axis=(0, 1))).result()
    np.testing.assert_array_equal(total, expected.astype(np.int64).sum(axis=(0, 1)))
    level0 = cluster_client.compute(slide.to_dask(0).max(axis=2)).result()
    np.testing.assert_array_equal(level0, truth.levels[0].pixels[0, 0].max(axis=2))


@pytest.mark.slow
def test_reduction_on_a_process_cluster_dicomweb(orthanc, tmp_path, cluster_client):
    local = synthetic.write_slide(
        tmp_path, "rgb_full", uids=synthetic.SlideUIDs.new("DASK")
    )
    orthanc.upload(local.files)
    slide = dicomslide.find_slides(
        DICOMwebClient(orthanc.dicomweb_url),
        study_instance_uid=local.uids.study_instance_uid,
        correct_color=False,
    )[0]
    array = slide.to_dask(0)
    total = cluster_client.compute(array.astype(np.int64).sum(axis=(0, 1))).result()
    expected = local.levels[0].redecode("pillow-direct")[0, 0].astype(np.int64)
    np.testing.assert_array_equal(total, expected.sum(axis=(0, 1)))


def test_core_does_not_import_dask():
    import subprocess
    import sys

    code = "import sys, dicomslide; print('dask' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True
    )
    assert result.stdout.strip() == "False"
