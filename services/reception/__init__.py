"""Reception: customers, vehicles, appointments, intakes, estimates and the consent ledger."""
