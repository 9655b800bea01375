"""State on disk under the destination: every path under .fleet/ (paths), one schema per record, atomic writes."""
