"""Stream wiring: the faust worker, read-model projections, the graph service."""
