"""The detector bank: one detector per module, each scoring a whole micro-batch at once."""
