"""Shared fixtures: split graphs are built once per session, since tracing and pricing take seconds."""

import pytest
import torch

from harness.model import Granularity, build_split_graph, load_model


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Stable timings and no oversubscription on small CI machines."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def alexnet_split():
    return build_split_graph(load_model("alexnet"), Granularity.MODULE)


@pytest.fixture(scope="session")
def resnet18_nodes():
    return build_split_graph(load_model("resnet18"), Granularity.NODE, (1, 3, 64, 64))


@pytest.fixture(scope="session")
def skipnet():
    loaded = load_model("experiments.models:tiny_skipnet")
    return loaded, build_split_graph(loaded, Granularity.NODE)
