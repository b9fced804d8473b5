"""Followup: follow-up visits, satisfaction surveys, complaints, comebacks and reminders."""
