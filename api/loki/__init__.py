"""Loki push (POST /loki/api/v1/push): log lines from Grafana Alloy, Promtail, Vector and the
Loki logging handlers into the journal, by the journal's batch path."""
