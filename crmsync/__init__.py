"""crmsync: keep a Django sales pipeline in two-way sync with an external CRM."""

__version__ = "0.1.0"
