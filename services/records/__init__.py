"""Records: technical library, stored files, customer and vehicle archive, reports, ERP."""
