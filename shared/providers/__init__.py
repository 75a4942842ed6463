"""The provider catalog: data (catalog.yaml), its schema, and the loader."""
