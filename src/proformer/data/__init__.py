"""Data: prepare files into dataset directories, load them, split them, build batches."""
