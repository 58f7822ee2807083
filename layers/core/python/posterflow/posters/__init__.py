"""Posters: the spec, the pipeline, the render worker, templates, overlays and profiles."""
