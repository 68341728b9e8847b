"""Reading the AWS Price List API (`pricing` `GetProducts`) into the price cache that `prices.py` reads first.

What is asked for is a table (`service_wants`): every `aws_prices.json` key the estimate and the account tools
read, with the service code, the request filters and the usage type (without its region prefix) that identifies the
product; EC2 instance types and RDS PostgreSQL classes are asked for by name. A product is taken only when every
condition holds (region, usage type, attributes such as Linux / Shared / no pre-installed software / capacity
status Used), and when none or several different prices match, the item is reported missing: never zero.

The client is passed in (tests give a botocore Stubber'd client; `mlp prices refresh` a real one), so importing
this module needs no credentials and creates no client.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlplatform.infra.catalog.gpu import gpu_instance_types
from mlplatform.infra.catalog.prices import EC2_FILE, SERVICES_FILE, _shipped, read_price_file, service_item

SOURCE = "AWS Price List API get_products"

# Usage-type region prefixes of the Price List (e.g. `USW2-BoxUsage:g6.xlarge`); us-east-1 also has un-prefixed
# usage types. A region missing here is matched on its `regionCode` attribute alone.
USAGE_PREFIX = {
    "us-east-1": "USE1",
    "us-east-2": "USE2",
    "us-west-1": "USW1",
    "us-west-2": "USW2",
    "ca-central-1": "CAN1",
    "eu-west-1": "EU",
    "eu-west-2": "EUW2",
    "eu-west-3": "EUW3",
    "eu-central-1": "EUC1",
    "eu-north-1": "EUN1",
    "ap-northeast-1": "APN1",
    "ap-northeast-2": "APN2",
    "ap-southeast-1": "APS1",
    "ap-southeast-2": "APS2",
    "ap-south-1": "APS3",
    "sa-east-1": "SAE1",
}

REGION_PATTERN = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")

# EC2 instance products: on-demand Linux, shared tenancy, no pre-installed software, capacity status Used (not the
# capacity-reservation rows), no licence included.
EC2_ATTRIBUTES = {
    "operatingSystem": "Linux",
    "tenancy": "Shared",
    "preInstalledSw": "NA",
    "capacitystatus": "Used",
}


@dataclass(frozen=True)
class Query:
    """One paginated `get_products` request (per region: a `regionCode` filter is added)."""

    service_code: str
    filters: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Want:
    """One figure: `aws_prices.json` key and field, and how its product is recognised."""

    key: str
    field: str
    query: Query
    usagetype: str
    attributes: tuple[tuple[str, str], ...] = ()
    instance_class: str | None = None

    @property
    def item(self) -> str:
        return service_item(self.key, self.field, self.instance_class)


@dataclass(frozen=True)
class Found:
    usd: float
    sku: str
    usagetype: str
    unit: str


@dataclass
class RegionResult:
    region: str
    ec2: dict[str, Found] = field(default_factory=dict)
    services: dict[Want, Found] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


EC2_QUERY = Query("AmazonEC2", tuple(sorted(EC2_ATTRIBUTES.items())))
_EC2 = "AmazonEC2"


def service_wants(rds_classes: Iterable[str]) -> list[Want]:
    """Every non-EC2-instance figure the estimate and the account tools read (keys of `aws_prices.json`)."""
    nat = Query(_EC2, (("productFamily", "NAT Gateway"),))
    gp3 = Query(_EC2, (("productFamily", "Storage"), ("volumeApiName", "gp3")))
    vpc = Query("AmazonVPC")
    elb = Query("AWSELB")
    s3 = Query("AmazonS3", (("productFamily", "Storage"),))
    logs = Query("AmazonCloudWatch")
    rds_storage = Query("AmazonRDS", (("productFamily", "Database Storage"),))
    rds = Query("AmazonRDS", (("databaseEngine", "PostgreSQL"), ("productFamily", "Database Instance")))
    wants = [
        Want("eks_cluster_hour", "STANDARD", Query("AmazonEKS"), "AmazonEKS-Hours:perCluster"),
        Want("eks_cluster_hour", "EXTENDED", Query("AmazonEKS"), "AmazonEKS-Hours:extendedSupport"),
        Want("nat_gateway_hour", "price", nat, "NatGateway-Hours"),
        Want("nat_gateway_gb", "price", nat, "NatGateway-Bytes"),
        Want("public_ipv4_hour", "price", vpc, "PublicIPv4:InUseAddress"),
        Want("interface_endpoint_az_hour", "price", vpc, "VpcEndpoint-Hours"),
        Want("alb_hour", "price", elb, "LoadBalancerUsage", (("productFamily", "Load Balancer-Application"),)),
        Want("alb_lcu_hour", "price", elb, "LCUUsage", (("productFamily", "Load Balancer-Application"),)),
        Want("nlb_hour", "price", elb, "LoadBalancerUsage", (("productFamily", "Load Balancer-Network"),)),
        Want("ebs_gp3_gb_month", "price", gp3, "EBS:VolumeUsage.gp3"),
        # Other volume types a Terraform plan may declare (`aws_ebs_volume.type`); io1's usage type says piops.
        *(
            Want(
                f"ebs_{api}_gb_month",
                "price",
                Query(_EC2, (("productFamily", "Storage"), ("volumeApiName", api))),
                usage,
            )
            for api, usage in (
                ("gp2", "EBS:VolumeUsage.gp2"),
                ("io1", "EBS:VolumeUsage.piops"),
                ("io2", "EBS:VolumeUsage.io2"),
                ("st1", "EBS:VolumeUsage.st1"),
                ("sc1", "EBS:VolumeUsage.sc1"),
            )
        ),
        Want("s3_standard_gb_month", "price", s3, "TimedStorage-ByteHrs"),
        Want("s3_standard_ia_gb_month", "price", s3, "TimedStorage-SIA-ByteHrs"),
        Want("s3_glacier_ir_gb_month", "price", s3, "TimedStorage-GIR-ByteHrs"),
        Want("kms_key_month", "price", Query("awskms"), "KMS-Keys"),
        Want("secretsmanager_secret_month", "price", Query("AWSSecretsManager"), "AWSSecretsManager-Secrets"),
        Want("cloudwatch_logs_ingest_gb", "price", logs, "DataProcessing-Bytes"),
        Want("cloudwatch_logs_storage_gb_month", "price", logs, "TimedStorage-ByteHrs"),
        Want("rds_gp3_gb_month", "single_az", rds_storage, "RDS:GP3-Storage"),
        Want("rds_gp3_gb_month", "multi_az", rds_storage, "RDS:Multi-AZ-GP3-Storage"),
        Want("ecr_storage_gb_month", "price", Query("AmazonECR"), "TimedStorage-ByteHrs"),
        Want("codebuild_linux_small_minute", "price", Query("CodeBuild"), "Build-Min:g1.small"),
        # Usage-based services the platform and its pipelines create: recorded for `mlp cost`'s notes and the
        # account tools, not in the monthly floor (on-demand tables and topics cost nothing idle).
        Want("dynamodb_storage_gb_month", "price", Query("AmazonDynamoDB"), "TimedStorage-ByteHrs"),
        Want("sns_requests_million", "price", Query("AmazonSNS"), "Requests-Tier1"),
    ]
    for klass in sorted(set(rds_classes)):
        wants.append(Want("rds_postgres_hour", "single_az", rds, f"InstanceUsage:{klass}", instance_class=klass))
        wants.append(Want("rds_postgres_hour", "multi_az", rds, f"Multi-AZUsage:{klass}", instance_class=klass))
    return wants


_INSTANCE_TYPE = re.compile(r"\b((?:db\.)?[a-z][a-z0-9-]*\.(?:nano|micro|small|medium|large|\d*xlarge|metal[-\w]*))\b")


def wanted_types(stack_files: Iterable[Path] = ()) -> tuple[list[str], list[str]]:
    """(EC2 instance types, RDS classes) to ask for: the shipped snapshot's, the GPU catalog's and any the stack
    files name."""
    ec2: set[str] = set()
    for types in _shipped(EC2_FILE)["regions"].values():
        ec2.update(types)
    ec2.update(gpu_instance_types())
    rds: set[str] = set()
    for entries in _shipped(SERVICES_FILE)["regions"].values():
        rds.update(entries.get("rds_postgres_hour", {}))
    for path in stack_files:
        for name in _INSTANCE_TYPE.findall(path.read_text(encoding="utf-8")):
            (rds if name.startswith("db.") else ec2).add(name)
    return sorted(ec2), sorted(rds)


# --- the API and its documented response format ---------------------------------------------------------------


def fetch(client: Any, query: Query, region: str) -> list[dict[str, Any]]:
    """Every product of `query` in `region`, following NextToken; each PriceList entry is a JSON string."""
    filters = [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": region}]
    filters += [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in query.filters]
    products: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {
            "ServiceCode": query.service_code,
            "Filters": filters,
            "FormatVersion": "aws_v1",
            "MaxResults": 100,
        }
        if token:
            params["NextToken"] = token
        page = client.get_products(**params)
        products += [json.loads(p) if isinstance(p, str) else p for p in page.get("PriceList", [])]
        token = page.get("NextToken")
        if not token:
            return products


def usagetype_matches(usagetype: str, region: str, wanted: str) -> bool:
    """`USW2-BoxUsage:g6.xlarge` is us-west-2's `BoxUsage:g6.xlarge`; us-east-1 also has un-prefixed types."""
    if usagetype == wanted:
        return region == "us-east-1"
    prefix, _, rest = usagetype.partition("-")
    if rest != wanted:
        return False
    known = USAGE_PREFIX.get(region)
    return prefix == known if known else prefix not in USAGE_PREFIX.values()


def on_demand_usd(product: Mapping[str, Any]) -> tuple[float, str] | None:
    """(USD per unit, unit) of the product's on-demand term: its first tier (beginRange 0) when tiered."""
    prices: set[tuple[float, str]] = set()
    for term in product.get("terms", {}).get("OnDemand", {}).values():
        dims = list(term.get("priceDimensions", {}).values())
        first = [d for d in dims if str(d.get("beginRange", "0")) == "0"] or dims
        for dim in first:
            usd = dim.get("pricePerUnit", {}).get("USD")
            if usd is not None:
                prices.add((float(usd), str(dim.get("unit", ""))))
    return prices.pop() if len(prices) == 1 else None


def select(
    products: Sequence[Mapping[str, Any]],
    region: str,
    usagetype: str,
    attributes: Mapping[str, str] = {},
) -> Found | str:
    """The one product that is `usagetype` in `region` with `attributes`, or why there is none."""
    matches: list[Found] = []
    for product in products:
        info = product.get("product", {})
        attrs = info.get("attributes", {})
        if attrs.get("regionCode", region) != region:
            continue
        if not usagetype_matches(str(attrs.get("usagetype", "")), region, usagetype):
            continue
        if any(attrs.get(k) != v and info.get(k) != v for k, v in attributes.items()):
            continue
        if attrs.get("licenseModel", "No License required") != "No License required":
            continue
        priced = on_demand_usd(product)
        if priced is not None:
            matches.append(Found(priced[0], str(info.get("sku", "")), str(attrs["usagetype"]), priced[1]))
    if not matches:
        return "no matching product"
    if len({m.usd for m in matches}) > 1:
        skus = ", ".join(sorted(m.sku for m in matches))
        return f"{len(matches)} matching products with different prices ({skus})"
    return matches[0]


def refresh_region(client: Any, region: str, instance_types: Sequence[str], rds_classes: Sequence[str]) -> RegionResult:
    """Every wanted figure of `region`; one paginated request per distinct query."""
    result = RegionResult(region)
    wants = service_wants(rds_classes)
    pages: dict[Query, list[dict[str, Any]]] = {}
    for query in [EC2_QUERY, *dict.fromkeys(w.query for w in wants)]:
        pages[query] = fetch(client, query, region)
    for itype in instance_types:
        family = "Compute Instance (bare metal)" if "metal" in itype else "Compute Instance"
        attrs = {**EC2_ATTRIBUTES, "instanceType": itype, "productFamily": family}
        found = select(pages[EC2_QUERY], region, f"BoxUsage:{itype}", attrs)
        if isinstance(found, Found):
            result.ec2[itype] = found
        else:
            result.missing.append(f"EC2 {itype}: {found}")
    for want in wants:
        attrs = dict(want.attributes)
        if want.instance_class:
            attrs |= {"instanceType": want.instance_class}
        found = select(pages[want.query], region, want.usagetype, attrs)
        if isinstance(found, Found):
            result.services[want] = found
        else:
            result.missing.append(f"{want.item}: {found} (usage type {want.usagetype})")
    return result


# --- the cache files -------------------------------------------------------------------------------------------


def _load(path: Path, skeleton: dict[str, Any]) -> dict[str, Any]:
    return read_price_file(path) or skeleton


def _write(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    Path(tmp).replace(path)


def write_cache(cache_dir: Path, results: Sequence[RegionResult], today: dt.date) -> list[Path]:
    """Lay each region's figures over the cache files (other regions are kept; a region is replaced whole)."""
    source = f"{SOURCE}, {today.isoformat()}"
    ec2_path, svc_path = cache_dir / EC2_FILE, cache_dir / SERVICES_FILE
    about = "Written by `mlp prices refresh` from the AWS Price List API; read before the shipped snapshot."
    ec2 = _load(ec2_path, {"_about": about, "source": SOURCE, "currency": "USD", "unit": "hour", "regions": {}})
    svc = _load(svc_path, {"_about": about, "regions": {}})
    for data in (ec2, svc):
        for meta in ("checked_on", "sources", "missing"):
            data.setdefault(meta, {})
    ec2.setdefault("skus", {})
    for r in results:
        ec2["regions"][r.region] = {t: f.usd for t, f in sorted(r.ec2.items())}
        ec2["skus"][r.region] = {
            t: {"sku": f.sku, "usagetype": f.usagetype, "unit": f.unit} for t, f in sorted(r.ec2.items())
        }
        entries: dict[str, Any] = {}
        for want, found in r.services.items():
            entry = entries.setdefault(want.key, {})
            if want.instance_class:
                entry = entry.setdefault(want.instance_class, {})
            entry[want.field] = found.usd
            entry.update(status="verified", source=source)
            entry.setdefault("skus", {})[want.field] = {
                "sku": found.sku,
                "usagetype": found.usagetype,
                "unit": found.unit,
            }
        svc["regions"][r.region] = entries
        for data in (ec2, svc):
            data["checked_on"][r.region] = today.isoformat()
            data["sources"][r.region] = source
            data["missing"][r.region] = sorted(r.missing)
    ec2["generated_at"] = today.isoformat()
    _write(ec2_path, ec2)
    _write(svc_path, svc)
    return [ec2_path, svc_path]
