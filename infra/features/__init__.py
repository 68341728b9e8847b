"""The feature store (Feast): the registry and offline files in the lake's `features` zone, the online store in
DynamoDB, an internal feature server and scheduled materialization.

`cloud` holds the AWS side (tables, roles; cloud layer), `component` the Kubernetes side (cluster layer),
`documents` the pure builders both use (and the contract test runs real Feast with)."""
