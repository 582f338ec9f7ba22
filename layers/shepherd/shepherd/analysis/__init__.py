"""Canary analysis: judge a candidate variant against the live one from per-minute metrics.

Pure domain code (no AWS, stdlib ``math`` only): :mod:`.config` is the ``analysis.judge`` part of a
strategy, :mod:`.metrics` the CloudWatch series it needs, :mod:`.observations` their values per variant,
:mod:`.sequential` the always-valid statistics, :mod:`.judge` the decision, :mod:`.verdict` the
evidence stored and announced, and :mod:`.ports` what it reads (both variants' series:
``adapters.cloudwatch.CloudWatchVariantMetrics``).
"""
