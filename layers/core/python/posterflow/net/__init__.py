"""Reaching data outside the function: where sources come from and which of them a tenant may read."""
