"""Events records publishes."""
