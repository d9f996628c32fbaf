"""The gateway's inbound HTTP endpoints, one module (and list of routes) per channel."""
