"""Reports read only the run store: console tables, the self-contained HTML report with plots and traces,
paired comparisons, LMSI and SCoRe training tables."""
