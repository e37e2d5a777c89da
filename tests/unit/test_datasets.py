"""Datasets: every one gives float32 tensors of the input shape; images are real and prepared alike."""

import pytest
import torch
from PIL import Image

from harness.errors import BadInput
from harness.manifest import DatasetSpec
from harness.model.datasets import dataset_names, load_inputs

SHAPE = (2, 3, 64, 48)


@pytest.mark.parametrize("name", ["synthetic", "samples", "experiments.datasets:ramps"])
def test_shape_and_dtype(name):
    inputs = load_inputs(DatasetSpec(name=name, count=3), SHAPE)
    assert len(inputs) == 3
    assert all(tensor.shape == SHAPE and tensor.dtype == torch.float32 for tensor in inputs)


def test_synthetic_is_the_same_every_time():
    first, second = (load_inputs(DatasetSpec(name="synthetic", count=2), SHAPE) for _ in range(2))
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_samples_are_real_images():
    [batch] = load_inputs(DatasetSpec(name="samples", count=1), (2, 3, 224, 224))
    photo, gift = batch
    assert not torch.equal(photo, gift)
    for image in batch:
        assert image.std() > 0.3
        assert image.std(dim=(1, 2)).min() > 0.1


def test_images_folder(tmp_path):
    Image.new("RGB", (80, 60), (255, 0, 0)).save(tmp_path / "a.png")
    Image.new("RGBA", (60, 80), (0, 0, 255, 255)).save(tmp_path / "b.png")
    (tmp_path / "notes.txt").write_text("not an image")
    red, blue = load_inputs(DatasetSpec(name="images", count=2, path=str(tmp_path)), (1, 3, 32, 32))
    assert red.shape == blue.shape == (1, 3, 32, 32)
    assert red[0, 0].mean() > 2 > red[0, 2].mean()
    assert blue[0, 2].mean() > 2 > blue[0, 0].mean()


def test_images_cycle_to_fill_count_and_batch(tmp_path):
    Image.new("RGB", (16, 16), (255, 255, 255)).save(tmp_path / "only.jpg")
    inputs = load_inputs(DatasetSpec(name="images", count=2, path=str(tmp_path)), (3, 3, 8, 8))
    assert all(torch.equal(tensor[0], inputs[0][0]) for tensor in inputs)


def test_empty_folder(tmp_path):
    with pytest.raises(BadInput) as caught:
        load_inputs(DatasetSpec(name="images", count=1, path=str(tmp_path)), SHAPE)
    assert str(caught.value) == f"dataset 'images': no .jpg, .jpeg, .png files in {tmp_path}"


def test_missing_folder(tmp_path):
    with pytest.raises(BadInput) as caught:
        load_inputs(DatasetSpec(name="images", count=1, path=str(tmp_path / "none")), SHAPE)
    assert str(caught.value) == f"dataset 'images': folder '{tmp_path / 'none'}' does not exist on this host"


def test_images_need_three_channels():
    with pytest.raises(BadInput) as caught:
        load_inputs(DatasetSpec(name="samples", count=1), (1, 1, 28, 28))
    assert (
        str(caught.value)
        == "dataset 'samples' gives RGB images: expected an input shape (N, 3, H, W), got (1, 1, 28, 28)"
    )


def test_unknown_name():
    class Request:
        name, count, path = "imagenet", 1, None

    with pytest.raises(BadInput) as caught:
        load_inputs(Request(), SHAPE)
    assert str(caught.value) == (
        f"unknown dataset 'imagenet': expected one of {', '.join(dataset_names())} or module:function"
    )
    assert dataset_names() == ["digits", "easy-hard", "images", "samples", "synthetic"]


def test_user_function_must_return_the_shape(tmp_path, monkeypatch):
    (tmp_path / "user_inputs.py").write_text(
        "import torch\n\ndef flat(count, shape):\n    return [torch.zeros(4)] * count\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(BadInput) as caught:
        load_inputs(DatasetSpec(name="user_inputs:flat", count=1), SHAPE)
    assert str(caught.value) == (
        "dataset 'user_inputs:flat': flat() returned (4,) torch.float32, "
        "expected float32 tensors of shape (2, 3, 64, 48)"
    )
