"""Prometheus remote_write 1.0 (POST /api/v1/write): snappy-compressed protobuf
WriteRequests into the numeric series, by the same batch (COPY) path as the other series
formats."""
