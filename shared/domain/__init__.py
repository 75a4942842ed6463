"""The pure core: no I/O, no framework, no cloud client."""
