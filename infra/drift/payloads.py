"""KServe's logged inference requests, turned into feature rows for the drift job.

Checked against KServe v0.20.0's pkg/logger (worker.go, types.go, store.go, handler.go):
- With `spec.predictor.logger.url` an http(s) URL, the agent sends each request (mode all/request) as a CloudEvent
  v1.0 in *binary* mode: the body is the request as the model received it, with its own Content-Type, and the
  attributes are headers: `ce-id` (the request id), `ce-type` (`org.kubeflow.serving.inference.request` or
  `...response`), `ce-source`, `ce-specversion`, and the extensions `ce-inferenceservicename`, `ce-namespace`,
  `ce-component`, `ce-endpoint`, `ce-metadata`, `ce-recordedtime` (and `ce-annotations` when configured).
- With the URL an s3:// location, the agent itself writes objects under
  `<prefix>/<namespace>/<inferenceservice>/<component>/<id>-request.json`, by default through its JSON marshaller:
  one LogRequest object (a batch of one) or an array, with camelCase keys (`id`, `reqType`, `inferenceService`,
  `contentType`, ...) and the body in `bytes`, base64-encoded (Go's encoding of a byte slice).

Bodies: the v1 protocol's `{"instances": [[...], ...]}` and the open inference (v2) protocol's
`{"inputs": [{"name", "shape", "datatype", "data"}]}`, either one 2-D tensor [rows, features] or one 1-D tensor
([rows] or [rows, 1]) per named feature. Only numeric features are read; drift of string features is not measured.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

REQUEST_EVENT_TYPE = "org.kubeflow.serving.inference.request"
RESPONSE_EVENT_TYPE = "org.kubeflow.serving.inference.response"
NUMERIC_DATATYPES = frozenset(
    {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"}
)


@dataclass(frozen=True, kw_only=True)
class LoggedEvent:
    """One logged request or response, whichever way it reached the lake."""

    id: str
    type: str
    inference_service: str
    namespace: str
    component: str
    content_type: str
    body: bytes


@dataclass(frozen=True, kw_only=True)
class FeatureRows:
    """Rows of one request; columns are the v2 tensor names when each tensor is one feature, else None (the
    position of a value in its row is its feature)."""

    columns: tuple[str, ...] | None
    rows: list[tuple[float, ...]]


def event_from_http(headers: Mapping[str, str], body: bytes) -> LoggedEvent:
    """A binary-mode CloudEvent as KServe's logger POSTs it (header names are case-insensitive)."""
    h = {k.lower(): v for k, v in headers.items()}
    missing = [k for k in ("ce-id", "ce-type", "ce-specversion") if k not in h]
    if missing:
        raise ValueError(f"not a binary-mode CloudEvent: missing header(s) {', '.join(missing)}")
    return LoggedEvent(
        id=h["ce-id"],
        type=h["ce-type"],
        inference_service=h.get("ce-inferenceservicename", ""),
        namespace=h.get("ce-namespace", ""),
        component=h.get("ce-component", ""),
        content_type=h.get("content-type", ""),
        body=body,
    )


def events_from_lake_object(text: str) -> list[LoggedEvent]:
    """The records of one object KServe's blob store wrote with its JSON marshaller (an object or an array)."""
    loaded = json.loads(text)
    records = loaded if isinstance(loaded, list) else [loaded]
    events = []
    for i, record in enumerate(records):
        if not isinstance(record, dict) or "reqType" not in record:
            raise ValueError(f"record {i}: not a KServe log record (no reqType)")
        events.append(
            LoggedEvent(
                id=str(record.get("id", "")),
                type=record["reqType"],
                inference_service=record.get("inferenceService", ""),
                namespace=record.get("namespace", ""),
                component=record.get("component", ""),
                content_type=record.get("contentType", ""),
                body=base64.b64decode(record.get("bytes", "")),
            )
        )
    return events


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool):
        return float(value)
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}: {value!r} is not a finite number")
    return float(value)


def _flatten(data: Any) -> list[Any]:
    if isinstance(data, list):
        return [v for item in data for v in _flatten(item)]
    return [data]


def _v1_rows(instances: Any) -> FeatureRows:
    if not isinstance(instances, list) or not all(isinstance(row, list) for row in instances):
        raise ValueError("instances: expected a list of rows (lists of feature values)")
    rows = [tuple(_number(v, f"instances[{i}][{j}]") for j, v in enumerate(row)) for i, row in enumerate(instances)]
    return FeatureRows(columns=None, rows=rows)


def _v2_tensor(tensor: Any, i: int) -> tuple[str, list[int], list[float]]:
    where = f"inputs[{i}]"
    if not isinstance(tensor, dict) or not {"name", "shape", "datatype", "data"} <= tensor.keys():
        raise ValueError(f"{where}: a tensor needs name, shape, datatype and data")
    if tensor["datatype"] not in NUMERIC_DATATYPES:
        raise ValueError(f"{where} ({tensor['name']}): datatype {tensor['datatype']} is not numeric")
    shape = [int(d) for d in tensor["shape"]]
    data = [_number(v, f"{where}.data[{k}]") for k, v in enumerate(_flatten(tensor["data"]))]
    if math.prod(shape) != len(data):
        raise ValueError(f"{where} ({tensor['name']}): shape {shape} holds {math.prod(shape)} values, data {len(data)}")
    return str(tensor["name"]), shape, data


def _v2_rows(inputs: Any) -> FeatureRows:
    if not isinstance(inputs, list) or not inputs:
        raise ValueError("inputs: expected a non-empty list of tensors")
    tensors = [_v2_tensor(t, i) for i, t in enumerate(inputs)]
    if len(tensors) == 1 and len(tensors[0][1]) == 2:
        _, (n, width), data = tensors[0]
        return FeatureRows(columns=None, rows=[tuple(data[r * width : (r + 1) * width]) for r in range(n)])
    lengths = set()
    for name, shape, _ in tensors:
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            raise ValueError(f"inputs ({name}): shape {shape}; with several tensors each must be one feature")
        lengths.add(shape[0])
    if len(lengths) != 1:
        raise ValueError(f"inputs: the feature tensors have different lengths {sorted(lengths)}")
    columns = tuple(name for name, _, _ in tensors)
    return FeatureRows(columns=columns, rows=list(zip(*(data for _, _, data in tensors), strict=True)))


def parse_request_body(body: bytes | str) -> FeatureRows:
    """Feature rows of a v1 (`instances`) or v2 (`inputs`) inference request body."""
    payload = json.loads(body)
    if isinstance(payload, dict) and "instances" in payload:
        return _v1_rows(payload["instances"])
    if isinstance(payload, dict) and "inputs" in payload:
        return _v2_rows(payload["inputs"])
    raise ValueError("not a v1 (instances) or v2 (inputs) inference request")


def request_rows(events: Iterable[LoggedEvent], model: str, feature_names: Sequence[str]) -> list[tuple[float, ...]]:
    """The feature rows of a model's logged requests, in the order of feature_names (responses are skipped)."""
    out: list[tuple[float, ...]] = []
    for event in events:
        if event.type != REQUEST_EVENT_TYPE or event.inference_service != model:
            continue
        parsed = parse_request_body(event.body)
        if parsed.columns is None:
            for row in parsed.rows:
                if len(row) != len(feature_names):
                    raise ValueError(f"event {event.id}: {len(row)} features, expected {len(feature_names)}")
            out.extend(parsed.rows)
            continue
        missing = [f for f in feature_names if f not in parsed.columns]
        if missing:
            raise ValueError(f"event {event.id}: no input tensor for feature(s) {', '.join(missing)}")
        index = [parsed.columns.index(f) for f in feature_names]
        out.extend(tuple(row[k] for k in index) for row in parsed.rows)
    return out
