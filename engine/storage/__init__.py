"""On-disk format. Disk is the truth: every write here is fsynced before it is acknowledged,
and every file that replaces another is written beside it and renamed over it."""
