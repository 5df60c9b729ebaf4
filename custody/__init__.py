"""custody: the domain of a chain-of-custody system for video evidence from private cameras.

This package holds the rules and the persistence of the domain. It imports no web framework (FastAPI)
and no workflow framework (Temporal): `api/`, `workflows/` and `activities/` depend on it, never the
other way round.
"""
