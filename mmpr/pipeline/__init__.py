"""The data engine's steps as pure functions over records: judge, pair, truncate-and-continue."""
