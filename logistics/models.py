"""Supplies, distribution, meal delivery, departure and return (filled by later issues)."""
