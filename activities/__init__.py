"""Temporal activities: thin, idempotent side effects (mail, storage, database). Rules live in custody/."""
