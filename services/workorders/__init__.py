"""Workorders: repair orders from consent to delivery and the live status board."""
