"""One module per command: each composes data, models, the loop, metrics and figures into a run directory."""
