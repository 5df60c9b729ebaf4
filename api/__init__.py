"""HTTP layer only: parse, authorize, call a service, shape the answer. No rules live here."""
