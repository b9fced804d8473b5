"""Common code of the workshop services: settings, database, events, outbox, consumers, HTTP."""
