"""Reports: resolution and first-response times, SLA attainment, booked time; text, CSV, HTML."""
