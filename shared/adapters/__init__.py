"""Adapters: the technology behind each port, named for it (Sql…, Gcp…, Http…)."""
