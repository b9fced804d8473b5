"""The service manager's pages: the branch against its targets, what is behind each figure,
complaints, technicians, scheduled reports and discounts waiting for approval."""
