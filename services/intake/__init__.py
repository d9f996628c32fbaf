"""Intake: records every contact, resolves the customer, opens and classifies cases."""
