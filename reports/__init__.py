"""PDF chain-of-custody reports (reportlab)."""
