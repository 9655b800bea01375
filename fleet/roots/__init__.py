"""The source and destination roots: whether they can be used now, and paths confined to them."""
