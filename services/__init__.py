"""The five lexcare services; each runs as `python -m services.<name>`."""
