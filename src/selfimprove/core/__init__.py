"""Types, errors and configuration shared by every layer."""
