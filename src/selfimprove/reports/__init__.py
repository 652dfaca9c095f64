"""Reports read only the run store: console tables now, HTML later."""
