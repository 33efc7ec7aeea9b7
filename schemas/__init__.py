"""Event contracts and the domain's vocabulary: pure data, no I/O."""
