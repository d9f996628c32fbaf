"""Followup: the durable care schedule inside the firm's care windows."""
