"""Model sources and weights: names, local weight files, the torchvision import workaround."""

import pytest
import torch

from harness.errors import BadInput
from harness.model import load_model, model_names
from harness.model.tvcompat import import_torchvision


def test_torchvision_imports_and_builds_models():
    torchvision = import_torchvision()
    assert torchvision.models.resnet18(weights=None).eval()(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_names_cover_the_zoo_and_backbones():
    names = model_names()
    for name in [
        "alexnet",
        "vgg16",
        "mobilenet_v3_large",
        "inception_v3",
        "convnext_tiny",
        "regnet_y_400mf",
        "vit_b_16",
    ]:
        assert name in names
    assert "fasterrcnn_resnet50_fpn.backbone" in names
    assert load_model("inception_v3").input_shape == (1, 3, 299, 299)


def test_weights_from_a_local_file(tmp_path):
    source = load_model("experiments.models:tiny_skipnet")
    path = tmp_path / "skipnet.pt"
    torch.save(source.module.state_dict(), path)
    loaded = load_model("experiments.models:tiny_skipnet", str(path))
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.module(x), source.module(x))


def test_weights_that_do_not_fit_name_the_file(tmp_path):
    path = tmp_path / "alex.pt"
    torch.save({"features.0.weight": torch.zeros(1)}, path)
    with pytest.raises(BadInput, match=f"weights file {path} does not fit model 'experiments.models:tiny_skipnet'"):
        load_model("experiments.models:tiny_skipnet", str(path))


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state": object()}, path)
    with pytest.raises(BadInput, match="not a tensor state dict"):
        load_model("experiments.models:tiny_skipnet", str(path))


def test_a_zoo_classifier_is_built_with_the_classes_asked_for_and_others_refuse():
    assert load_model("resnet18", None, 10).module.fc.out_features == 10
    assert load_model("resnet18").module.fc.out_features == 1000
    with pytest.raises(BadInput, match="weight set 'DEFAULT' has its own classes; give classes 10 with weights none"):
        load_model("resnet18", "DEFAULT", 10)
    with pytest.raises(BadInput, match="classes can be set on torchvision's classifiers only"):
        load_model("experiments.models:tiny_skipnet", None, 10)
