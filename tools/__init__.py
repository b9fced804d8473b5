"""Developer tools: process runner, demo data."""
