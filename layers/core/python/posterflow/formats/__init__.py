"""Input formats read without trusting them: CSV rows and ZIP archives (ranged reads)."""
