"""Daily check-in, the nightly roll-up and its sign-off (filled by later issues)."""
