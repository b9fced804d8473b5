"""Events followup publishes."""
