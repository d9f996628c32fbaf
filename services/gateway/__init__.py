"""The channel gateway: platform webhooks in as contact.received, requests out on channels."""
