"""Properties of the pure subnet planner."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlplatform.infra.network.cidr import MIN_PRIVATE_PREFIX, SubnetPlanError, plan_subnets, slot_count

vpcs = st.builds(
    lambda addr, prefix: ipaddress.ip_network((addr, prefix), strict=False),
    st.integers(min_value=0, max_value=2**32 - 1),
    st.integers(min_value=16, max_value=24),
)


@given(vpc=vpcs, az_count=st.integers(min_value=1, max_value=6))
def test_subnets_are_disjoint_inside_the_vpc_and_one_per_az(vpc: ipaddress.IPv4Network, az_count: int) -> None:
    try:
        plan = plan_subnets(vpc, az_count)
    except SubnetPlanError:
        # only refused when the private subnets would be smaller than the minimum
        assert vpc.prefixlen + (slot_count(az_count).bit_length() - 1) > MIN_PRIVATE_PREFIX
        return
    subnets = [*plan.private, *plan.public]
    assert len(plan.private) == len(plan.public) == az_count
    assert all(s.subnet_of(vpc) for s in subnets)
    for i, a in enumerate(subnets):
        for b in subnets[i + 1 :]:
            assert not a.overlaps(b)
    # private subnets are the big ones, and large enough for nodes and pods
    assert all(p.prefixlen <= MIN_PRIVATE_PREFIX for p in plan.private)
    assert all(pub.num_addresses < priv.num_addresses for pub in plan.public for priv in plan.private)
    assert all(pub.prefixlen <= 28 for pub in plan.public)  # AWS's smallest subnet


@given(vpc=vpcs, az_count=st.integers(min_value=1, max_value=3))
def test_plan_is_deterministic_and_adding_an_az_moves_no_subnet(vpc: ipaddress.IPv4Network, az_count: int) -> None:
    try:
        smaller = plan_subnets(vpc, az_count)
        larger = plan_subnets(vpc, az_count + 1)
    except SubnetPlanError:
        return
    assert plan_subnets(vpc, az_count) == smaller
    if slot_count(az_count) == slot_count(az_count + 1):  # same number of slots: nothing may move
        assert larger.private[:az_count] == smaller.private
        assert larger.public[:az_count] == smaller.public


def test_documented_example() -> None:
    plan = plan_subnets("10.0.0.0/16", 3)
    assert [str(n) for n in plan.private] == ["10.0.0.0/18", "10.0.64.0/18", "10.0.128.0/18"]
    assert [str(n) for n in plan.public] == ["10.0.192.0/20", "10.0.208.0/20", "10.0.224.0/20"]
    assert plan.private_usable_ips == 3 * (16384 - 5)


def test_too_small_vpc_error_says_what_to_use() -> None:
    with pytest.raises(SubnetPlanError, match=r"use /22 or larger"):
        plan_subnets("10.0.0.0/23", 3)
