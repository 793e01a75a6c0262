"""Definitions scaffolded with `dg scaffold defs ...` (see README); pipelines/definitions.py loads them."""
