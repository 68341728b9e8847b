"""Feature definitions of the `ranking` project (prod's feature store): a team's Feast repository holds this file
beside the platform's `feature_store.yaml` (the `feast-config` ConfigMap of the `feast` namespace) and runs
`feast apply` with the `feast-materializer` service account (docs/components.md, "Feature store").

The sources are Parquet files in the lake's `features` zone under `feast/ranking/sources/`, the only prefix the
materializer reads: set FEAST_SOURCES_URI to `s3://<features bucket>/feast/ranking/sources/`. Every view listed
here must be in the stack's `feature_store.feature_views` (the platform creates its online table; apply creates
none).
"""

from __future__ import annotations

import os
from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float32, Int64

SOURCES = os.environ["FEAST_SOURCES_URI"].rstrip("/")

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
item = Entity(name="item", join_keys=["item_id"], value_type=ValueType.INT64)

user_activity = FeatureView(
    name="user_activity",
    entities=[user],
    ttl=timedelta(days=1),
    schema=[Field(name="clicks", dtype=Int64), Field(name="dwell_seconds", dtype=Float32)],
    online=True,
    source=FileSource(
        name="user_activity_source",
        path=f"{SOURCES}/user_activity.parquet",
        timestamp_field="event_timestamp",
        created_timestamp_column="created",
    ),
)

item_popularity = FeatureView(
    name="item_popularity",
    entities=[item],
    ttl=timedelta(days=7),
    schema=[Field(name="score", dtype=Float32)],
    online=True,
    source=FileSource(
        name="item_popularity_source",
        path=f"{SOURCES}/item_popularity.parquet",
        timestamp_field="event_timestamp",
        created_timestamp_column="created",
    ),
)
