"""Temporal workflows: orchestration only, deterministic. Side effects live in activities/."""
