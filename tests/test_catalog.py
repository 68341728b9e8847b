"""The dated data: GPU instance specs, prices and pinned versions."""

from __future__ import annotations

import datetime as dt

import pytest

from mlplatform.infra.catalog import gpu as gpu_catalog
from mlplatform.infra.catalog import prices, versions


@pytest.mark.parametrize(
    ("itype", "gpus", "model", "mem_gib", "vcpus", "efa", "price"),
    [
        ("g5.xlarge", 1, "a10g", 22.35, 4, False, 1.006),
        ("g6e.12xlarge", 4, "l40s", 44.7, 48, True, None),
        ("p5.48xlarge", 8, "h100", 80.0, 192, True, 55.04),
        ("p6-b200.48xlarge", 8, "b200", 179.06, 192, True, 113.9328),
    ],
)
def test_gpu_instances_as_ec2_reports_them(
    itype: str, gpus: int, model: str, mem_gib: float, vcpus: int, efa: bool, price: float | None
) -> None:
    spec = gpu_catalog.gpu_instance(itype)
    assert spec is not None
    assert (spec.gpu_count, spec.gpu_model, spec.gpu_memory_gib, spec.vcpus, spec.efa_supported) == (
        gpus,
        model,
        mem_gib,
        vcpus,
        efa,
    )
    if price is not None:
        assert spec.on_demand_price("us-east-1") == price
    assert spec.on_demand_price("eu-west-1") is None  # no price is invented for a region the snapshot lacks


@pytest.mark.parametrize(
    ("itype", "interfaces"),
    [
        ("p5.48xlarge", 32),
        ("p5en.48xlarge", 16),
        ("p4d.24xlarge", 4),
        ("g6e.48xlarge", 4),
        ("g5.48xlarge", 1),
        ("g6.xlarge", 0),
    ],
)
def test_efa_interfaces_as_ec2_reports_them(itype: str, interfaces: int) -> None:
    """EfaInfo.MaximumEfaInterfaces, from the pinned Karpenter reference (multi-node NCCL needs one per card)."""
    spec = gpu_catalog.gpu_instance(itype)
    assert spec is not None and spec.efa_interfaces == interfaces
    # a type supports EFA exactly when it takes an interface, across the whole catalog
    everything = [gpu_catalog.gpu_instance(t) for t in gpu_catalog.gpu_instance_types()]
    assert all(s is not None and s.efa_supported == (s.efa_interfaces > 0) for s in everything)


def test_closest_names_for_typos() -> None:
    assert gpu_catalog.closest("g5.3xlarge", gpu_catalog.nvidia_instance_types())[0] == "g5.xlarge"
    assert "p5.48xlarge" in gpu_catalog.closest("p5.48xlarg", gpu_catalog.nvidia_instance_types())
    assert set(gpu_catalog.closest("g6x", gpu_catalog.nvidia_families())) >= {"g6", "g6e"}


def test_neuron_types_are_in_the_catalog_but_not_nvidia() -> None:
    spec = gpu_catalog.gpu_instance("inf2.xlarge")
    assert spec is not None and not spec.is_nvidia
    assert "inf2.xlarge" not in gpu_catalog.nvidia_instance_types()


def test_price_snapshot_is_dated_and_for_us_east_1_only() -> None:
    source, generated = prices.price_source()
    assert "karpenter" in source and generated.startswith("2026-07-20")
    assert prices.priced_regions() == ("us-east-1",)
    assert prices.ec2_on_demand_price("t3.medium", "us-east-1") == 0.0416


def test_default_eks_version_is_in_standard_support_when_checked() -> None:
    eks = versions.eks()
    default = eks.versions[eks.default_version]
    assert default.support_on(eks.checked_on) == "standard"
    assert eks.versions["1.34"].support_on(dt.date(2026, 12, 3)) == "extended"
    assert eks.price_per_hour == {"STANDARD": 0.10, "EXTENDED": 0.60}
    for version in eks.versions.values():
        assert set(version.addons) == {
            "vpc-cni",
            "coredns",
            "kube-proxy",
            "aws-ebs-csi-driver",
            "eks-pod-identity-agent",
        }
        assert version.addons["kube-proxy"].startswith(f"v{version.version}.")


def test_charts_and_images_are_pinned_with_sources() -> None:
    for name in ("karpenter", "karpenter-crd", "nvidia-device-plugin"):
        chart = versions.chart(name)
        assert chart.version and chart.source and "latest" not in chart.version
    assert versions.image("pause").endswith(":3.10")
    assert versions.ami_alias_version("al2023") == "v20260724"
