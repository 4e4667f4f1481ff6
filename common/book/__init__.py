"""The book: ingesting pages, chunking, the index and retrieval, chapters and books."""
