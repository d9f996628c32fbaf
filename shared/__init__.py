"""Plumbing and contracts every lexcare service uses: events, settings, logging, Kafka, MongoDB."""
