"""Load generators and a baseline server for side-by-side runs (DESIGN 11); each prints one JSON line."""
