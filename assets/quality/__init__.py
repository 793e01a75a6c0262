"""Data quality: Great Expectations suites on raw, staging and mart tables as Dagster asset checks."""
