"""Framework-free operations the API and the CLI share."""
