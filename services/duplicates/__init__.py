"""Near-duplicates in the pool: image signatures, matching, the groups and their copies."""
