"""Prices beyond us-east-1: the Price List API reader, the cache the lookups prefer, and failing closed.

Every `PriceList` entry below has the shape of the documented `GetProducts` response (botocore's
`data/pricing/2017-10-15/examples-1.json`: a JSON string with product.attributes, product.sku and
terms.OnDemand.<term>.priceDimensions.<dim>.pricePerUnit.USD); figures not real prices.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber

from mlplatform.infra.catalog import price_list, prices
from mlplatform.infra.catalog.price_list import EC2_QUERY, Query
from mlplatform.mlp import cli
from mlplatform.mlp import prices as price_cmd

ROOT = Path(__file__).resolve().parents[1]
STACK_FILES = sorted((ROOT / "stacks").glob("Pulumi.*.yaml"))
TODAY = dt.date(2026, 12, 5)
EC2_GOOD = {"operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used"}


def product(
    sku: str,
    usagetype: str,
    usd: float,
    region: str = "us-west-2",
    family: str = "Compute Instance",
    unit: str = "Hrs",
    tiers: list[tuple[str, float]] | None = None,
    attributes: dict[str, str] | None = None,
) -> str:
    """One PriceList entry: shape from the documented format; figures not real prices."""
    dims = {
        f"{sku}.JRTCKXETXF.{i}": {
            "unit": unit,
            "endRange": "Inf",
            "description": "fixture",
            "appliesTo": [],
            "rateCode": f"{sku}.JRTCKXETXF.{i}",
            "beginRange": begin,
            "pricePerUnit": {"USD": f"{price:.10f}"},
        }
        for i, (begin, price) in enumerate(tiers or [("0", usd)])
    }
    return json.dumps(
        {
            "product": {
                "productFamily": family,
                "attributes": {"usagetype": usagetype, "regionCode": region, "servicecode": "x", **(attributes or {})},
                "sku": sku,
            },
            "serviceCode": "x",
            "terms": {
                "OnDemand": {
                    f"{sku}.JRTCKXETXF": {
                        "priceDimensions": dims,
                        "sku": sku,
                        "effectiveDate": "2026-12-01T00:00:00Z",
                        "offerTermCode": "JRTCKXETXF",
                        "termAttributes": {},
                    }
                }
            },
            "version": "20261201000000",
            "publicationDate": "2026-12-01T00:00:00Z",
        }
    )


def ec2_product(itype: str, usd: float, region: str = "us-west-2", prefix: str = "USW2-", **over: str) -> str:
    attrs = {**EC2_GOOD, "instanceType": itype, **over}
    family = "Compute Instance (bare metal)" if "metal" in itype else "Compute Instance"
    return product(f"SKU-{itype}-{len(over)}-{usd}", f"{prefix}BoxUsage:{itype}", usd, region, family, attributes=attrs)


def client() -> Any:
    return botocore.session.get_session().create_client(
        "pricing", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def params(query: Query, region: str, token: str | None = None) -> dict[str, Any]:
    filters = [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": region}]
    filters += [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in query.filters]
    out: dict[str, Any] = {"ServiceCode": query.service_code, "Filters": filters, "FormatVersion": "aws_v1"}
    out["MaxResults"] = 100
    if token:
        out["NextToken"] = token
    return out


def complete_pages(region: str, prefix: str, usd: float = 0.5) -> dict[Query, list[str]]:
    """A product for every figure `refresh_region` asks for (figures not real prices)."""
    types, classes = price_list.wanted_types(STACK_FILES)
    pages: dict[Query, list[str]] = {EC2_QUERY: [ec2_product(t, usd, region, prefix) for t in types]}
    for n, want in enumerate(price_list.service_wants(classes)):
        attrs = dict(want.attributes)
        family = attrs.pop("productFamily", "Fixture")
        if want.instance_class:
            attrs["instanceType"] = want.instance_class
        pages.setdefault(want.query, []).append(
            product(f"SVC{n}", f"{prefix}{want.usagetype}", usd, region, family, attributes=attrs)
        )
    return pages


def stub_region(stubber: Stubber, region: str, pages: dict[Query, list[str]]) -> None:
    """Responses in the order `refresh_region` asks (the EC2 query, then each distinct service query)."""
    _, classes = price_list.wanted_types(STACK_FILES)
    queries = [EC2_QUERY, *dict.fromkeys(w.query for w in price_list.service_wants(classes))]
    for query in queries:
        body = {"FormatVersion": "aws_v1", "PriceList": pages.get(query, [])}
        stubber.add_response("get_products", body, params(query, region))


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = tmp_path / "prices"
    monkeypatch.setenv("MLP_PRICE_CACHE", str(target))
    return target


# --- parsing: SKU selection, pagination ---------------------------------------------------------------------


def test_ec2_selection_takes_linux_shared_no_software_used_of_the_region() -> None:
    decoys = [
        ec2_product("g6.xlarge", 9.1, operatingSystem="Windows"),
        ec2_product("g6.xlarge", 9.2, tenancy="Dedicated"),
        ec2_product("g6.xlarge", 9.3, preInstalledSw="SQL Std"),
        ec2_product("g6.xlarge", 9.4, capacitystatus="AllocatedCapacityReservation"),
        ec2_product("g6.xlarge", 9.5, licenseModel="Bring your own license"),
        ec2_product("g6.xlarge", 9.6, prefix="EU-"),  # eu-west-1's usage type
        ec2_product("g6.xlarge", 9.7, prefix=""),  # us-east-1's un-prefixed usage type
        ec2_product("g6.xlarge", 9.8, region="eu-west-1", prefix="USW2-"),
    ]
    good = ec2_product("g6.xlarge", 1.2345)
    c = client()
    with Stubber(c) as stub:
        stub.add_response(
            "get_products", {"PriceList": decoys[:4], "NextToken": "page-2"}, params(EC2_QUERY, "us-west-2")
        )
        stub.add_response("get_products", {"PriceList": [*decoys[4:], good]}, params(EC2_QUERY, "us-west-2", "page-2"))
        products = price_list.fetch(c, EC2_QUERY, "us-west-2")
        stub.assert_no_pending_responses()
    attrs = {**price_list.EC2_ATTRIBUTES, "instanceType": "g6.xlarge"}
    found = price_list.select(products, "us-west-2", "BoxUsage:g6.xlarge", attrs)
    assert found == price_list.Found(1.2345, json.loads(good)["product"]["sku"], "USW2-BoxUsage:g6.xlarge", "Hrs")
    assert price_list.select(products[:-1], "us-west-2", "BoxUsage:g6.xlarge", attrs) == "no matching product"


def test_us_east_1_accepts_its_unprefixed_usage_type_only_there() -> None:
    p = [json.loads(ec2_product("t3.medium", 0.77, region="us-east-1", prefix=""))]
    assert isinstance(price_list.select(p, "us-east-1", "BoxUsage:t3.medium"), price_list.Found)
    p = [json.loads(ec2_product("t3.medium", 0.77, region="us-west-2", prefix=""))]
    assert price_list.select(p, "us-west-2", "BoxUsage:t3.medium") == "no matching product"


def test_tiered_price_takes_the_first_tier_and_conflicting_products_are_not_guessed() -> None:
    tiered = json.loads(product("S3", "USW2-TimedStorage-ByteHrs", 0, unit="GB-Mo", tiers=[("51200", 0.3), ("0", 0.4)]))
    assert price_list.select([tiered], "us-west-2", "TimedStorage-ByteHrs") == price_list.Found(
        0.4, "S3", "USW2-TimedStorage-ByteHrs", "GB-Mo"
    )
    other = json.loads(product("S3B", "USW2-TimedStorage-ByteHrs", 0.9, unit="GB-Mo"))
    why = price_list.select([tiered, other], "us-west-2", "TimedStorage-ByteHrs")
    assert why == "2 matching products with different prices (S3, S3B)"


# --- refresh: the cache it writes, missing figures -----------------------------------------------------------


def test_refresh_writes_the_dated_cache_and_reports_a_missing_product(cache_dir: Path) -> None:
    pages = complete_pages("us-west-2", "USW2-")
    pages[EC2_QUERY] = [p for p in pages[EC2_QUERY] if "BoxUsage:g6e.xlarge" not in p]
    eks = Query("AmazonEKS")
    pages[eks] = [p for p in pages[eks] if "extendedSupport" not in p]
    c = client()
    types, classes = price_list.wanted_types(STACK_FILES)
    with Stubber(c) as stub:
        stub_region(stub, "us-west-2", pages)
        result = price_list.refresh_region(c, "us-west-2", types, classes)
        stub.assert_no_pending_responses()
    assert sorted(result.missing) == [
        "EC2 g6e.xlarge: no matching product",
        "eks_cluster_hour EXTENDED: no matching product (usage type AmazonEKS-Hours:extendedSupport)",
    ]
    price_list.write_cache(cache_dir, [result], TODAY)
    ec2 = json.loads((cache_dir / "ec2_prices.json").read_text())
    svc = json.loads((cache_dir / "aws_prices.json").read_text())
    assert ec2["checked_on"]["us-west-2"] == "2026-12-05"
    assert ec2["sources"]["us-west-2"] == "AWS Price List API get_products, 2026-12-05"
    assert ec2["skus"]["us-west-2"]["g6.xlarge"]["usagetype"] == "USW2-BoxUsage:g6.xlarge"
    assert "g6e.xlarge" not in ec2["regions"]["us-west-2"]
    assert svc["regions"]["us-west-2"]["eks_cluster_hour"] == {
        "STANDARD": 0.5,
        "status": "verified",
        "source": "AWS Price List API get_products, 2026-12-05",
        "skus": {"STANDARD": {"sku": "SVC0", "usagetype": "USW2-AmazonEKS-Hours:perCluster", "unit": "Hrs"}},
    }
    assert svc["regions"]["us-west-2"]["rds_postgres_hour"]["db.t4g.micro"]["multi_az"] == 0.5
    # Missing stays missing: never zero.
    assert prices.ec2_on_demand_price("g6e.xlarge", "us-west-2") is None
    assert prices.service_price("us-west-2", "eks_cluster_hour", "EXTENDED") is None
    with pytest.raises(prices.PriceMissing, match=r"no price for eks_cluster_hour EXTENDED in us-west-2"):
        prices.require_service_price("us-west-2", "eks_cluster_hour", "EXTENDED")
    assert prices.require_service_price("us-west-2", "eks_cluster_hour", "STANDARD") == 0.5


def test_every_key_the_shipped_price_data_holds_is_asked_for() -> None:
    shipped = json.loads((ROOT / "infra/catalog/data/aws_prices.json").read_text())["regions"]["us-east-1"]
    _, classes = price_list.wanted_types(STACK_FILES)
    asked = {(w.key, w.field, w.instance_class) for w in price_list.service_wants(classes)}
    for key, entry in shipped.items():
        if key == "rds_postgres_hour":
            for klass, figures in entry.items():
                assert (key, "single_az", klass) in asked
                assert (key, "multi_az", klass) in asked, (klass, figures)
            continue
        fields = [f for f in entry if f not in ("status", "source")]
        for f in fields:
            assert (key, f, None) in asked


def test_wanted_types_include_the_catalog_and_the_stacks() -> None:
    types, classes = price_list.wanted_types(STACK_FILES)
    assert {"p5.48xlarge", "g6e.48xlarge", "t3.medium", "m7i.xlarge", "g4dn.xlarge"} <= set(types)
    assert {"db.t4g.micro", "db.t4g.small", "db.m7g.large"} <= set(classes)
    assert not [t for t in types if t.startswith("db.")]


# --- lookups: cache first, fail closed, labelled fallback ---------------------------------------------------


def write_cache(cache_dir: Path, region: str, ec2: dict[str, float], services: dict[str, Any]) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    meta = {"checked_on": {region: "2026-12-05"}, "sources": {region: "AWS Price List API get_products, 2026-12-05"}}
    (cache_dir / "ec2_prices.json").write_text(json.dumps({"regions": {region: ec2}, **meta}))
    (cache_dir / "aws_prices.json").write_text(json.dumps({"regions": {region: services}, **meta}))


def test_cache_is_preferred_over_the_shipped_snapshot(cache_dir: Path) -> None:
    assert prices.ec2_on_demand_price("t3.medium", "us-east-1") == 0.0416
    write_cache(cache_dir, "us-east-1", {"t3.medium": 0.0999}, {"nat_gateway_hour": {"price": 0.0777}})
    assert prices.ec2_on_demand_price("t3.medium", "us-east-1") == 0.0999
    assert prices.service_price("us-east-1", "nat_gateway_hour") == 0.0777
    # Not in the cache: the shipped figure still answers.
    assert prices.ec2_on_demand_price("g5.xlarge", "us-east-1") == 1.006
    assert prices.service_price("us-east-1", "kms_key_month") == 1.0
    got = prices.lookup_ec2_price("t3.medium", "us-east-1")
    assert got.source == f"cache {cache_dir / 'ec2_prices.json'}: AWS Price List API get_products, 2026-12-05"
    assert not got.fallback


def test_cache_rds_classes_are_laid_over_the_shipped_ones(cache_dir: Path) -> None:
    write_cache(cache_dir, "us-east-1", {}, {"rds_postgres_hour": {"db.t4g.micro": {"single_az": 0.0211}}})
    entry = prices.service_entry("us-east-1", "rds_postgres_hour")
    assert entry is not None
    assert entry["db.t4g.micro"] == {"single_az": 0.0211}
    assert entry["db.t4g.small"]["multi_az"] == 0.065
    assert prices.require_service_price("us-east-1", "rds_postgres_hour", "single_az", instance_class="db.t4g.micro")
    assert (
        prices.require_service_price("us-east-1", "rds_postgres_hour", "single_az", instance_class="db.t4g.micro")
        == 0.0211
    )


def test_cache_dir_override_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLP_PRICE_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert prices.price_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("MLP_PRICE_CACHE")
    assert prices.price_cache_dir() == tmp_path / "xdg" / "mlp" / "prices"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert prices.price_cache_dir() == tmp_path / "home" / ".cache" / "mlp" / "prices"


def test_missing_price_raises_naming_region_item_and_command() -> None:
    with pytest.raises(prices.PriceMissing) as caught:
        prices.require_ec2_price("g6e.xlarge", "eu-west-1")
    assert str(caught.value) == (
        "no price for EC2 g6e.xlarge in eu-west-1: run `mlp prices refresh --regions eu-west-1` (needs AWS "
        "credentials for the Price List API), or price at another region's rates as a labelled fallback "
        "(--price-region us-east-1)"
    )
    assert (caught.value.region, caught.value.item) == ("eu-west-1", "EC2 g6e.xlarge")
    with pytest.raises(prices.PriceMissing, match=r"no price for rds_gp3_gb_month multi_az in eu-west-1"):
        prices.require_service_price("eu-west-1", "rds_gp3_gb_month", "multi_az")
    # The None-returning readers keep their contract.
    assert prices.ec2_on_demand_price("g6e.xlarge", "eu-west-1") is None


def test_fallback_prices_with_another_region_and_says_so(cache_dir: Path) -> None:
    got = prices.lookup_ec2_price("g6e.xlarge", "eu-west-1", fallback="us-east-1")
    assert (got.usd, got.region, got.requested_region, got.fallback) == (1.861, "us-east-1", "eu-west-1", True)
    assert got.source.startswith("FALLBACK us-east-1 rates for eu-west-1; ")
    with prices.price_region_fallback("us-east-1"):
        assert prices.current_price_region_fallback() == "us-east-1"
        eks = prices.lookup_service_price("eu-west-1", "eks_cluster_hour", "EXTENDED")
        assert (eks.usd, eks.fallback) == (0.60, True)
        # A region with its own figure is not a fallback.
        write_cache(cache_dir, "eu-west-1", {"g6e.xlarge": 2.5}, {})
        own = prices.lookup_ec2_price("g6e.xlarge", "eu-west-1")
        assert (own.usd, own.fallback) == (2.5, False)
    assert prices.current_price_region_fallback() is None
    with pytest.raises(prices.PriceMissing, match=r"refresh --regions eu-west-1,us-east-1"):
        prices.require_ec2_price("x9.huge", "eu-west-1", fallback="us-east-1")


# --- the CLI ---------------------------------------------------------------------------------------------------


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", ["mlp", *args])
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as done:
        cli.main()
    return int(done.value.code or 0)


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    c = client()
    monkeypatch.setattr(price_cmd, "client_factory", lambda: c)
    with Stubber(c) as stub:
        yield stub


def test_cli_refresh_end_to_end_and_idempotent(
    cache_dir: Path, stubbed: Stubber, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):
        stub_region(stubbed, "us-west-2", complete_pages("us-west-2", "USW2-"))
        stub_region(stubbed, "eu-west-1", complete_pages("eu-west-1", "EU-", usd=0.25))
    assert run_cli(["prices", "refresh", "--regions", "us-west-2,eu-west-1"], monkeypatch) == 0
    first = {p.name: p.read_bytes() for p in cache_dir.iterdir()}
    assert run_cli(["prices", "refresh", "--regions", "us-west-2,eu-west-1"], monkeypatch) == 0
    assert {p.name: p.read_bytes() for p in cache_dir.iterdir()} == first
    stubbed.assert_no_pending_responses()
    err = capsys.readouterr().err
    assert "MISSING" not in err and "Traceback" not in err
    assert prices.require_ec2_price("p5.48xlarge", "eu-west-1") == 0.25
    assert prices.require_service_price("us-west-2", "nat_gateway_hour") == 0.5
    # The shipped region is untouched by a refresh of others.
    assert prices.ec2_on_demand_price("t3.medium", "us-east-1") == 0.0416


def test_cli_refresh_writes_to_cache_dir_and_exits_1_on_a_missing_price(
    tmp_path: Path, stubbed: Stubber, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pages = complete_pages("us-west-2", "USW2-")
    kms = Query("awskms")
    pages[kms] = []
    stub_region(stubbed, "us-west-2", pages)
    target = tmp_path / "elsewhere"
    assert run_cli(["prices", "refresh", "--regions", "us-west-2", "--cache-dir", str(target)], monkeypatch) == 1
    err = capsys.readouterr().err
    assert "us-west-2: MISSING kms_key_month: no matching product (usage type KMS-Keys)" in err
    assert "1 price(s) not found: they stay unpriced (never $0)" in err
    written = json.loads((target / "aws_prices.json").read_text())
    assert "kms_key_month" not in written["regions"]["us-west-2"]
    assert written["missing"]["us-west-2"] == ["kms_key_month: no matching product (usage type KMS-Keys)"]


def test_cli_without_credentials_exits_4_with_a_message(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(price_cmd, "client_factory", price_cmd.default_client_factory)
    assert run_cli(["prices", "refresh", "--regions", "us-west-2"], monkeypatch) == 4
    err = capsys.readouterr().err
    assert "\nerror: the AWS Price List API needs credentials (Unable to locate credentials)" in err
    assert "Traceback" not in err
    assert not cache_dir.exists()


def test_cli_access_denied_exits_4(
    cache_dir: Path, stubbed: Stubber, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stubbed.add_client_error("get_products", "AccessDeniedException", "not allowed pricing:GetProducts")
    assert run_cli(["prices", "refresh", "--regions", "us-west-2"], monkeypatch) == 4
    err = capsys.readouterr().err
    assert "error: the AWS Price List API refused the request" in err and "AccessDeniedException" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("args", [["refresh", "--regions", "west-2"], ["update"]])
def test_cli_bad_input_exits_2(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_cli(["prices", *args], monkeypatch) == 2
