"""The encrypted, deduplicating repository: format, keys, chunking, sources, restore, check, retention."""
