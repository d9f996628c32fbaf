"""Routing: lawyers assigned by legal field and load, fees quoted."""
