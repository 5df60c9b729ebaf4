"""The `custody` command line (typer + rich)."""
