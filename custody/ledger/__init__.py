"""The tamper-evident custody ledger: an RFC 9162 Merkle log with C2SP signed checkpoints.

`merkle`, `note`, `entries` and `verify` are pure (no database): the offline verifier runs from an
exported folder with only these. `store` keeps the log in the database.
"""
