"""Fabric.js canvas templates (seed 002): the model and its validation (:mod:`.model`), filling
per item (:mod:`.fill`) and the interface to the Chromium canvas renderer (:mod:`.spec`)."""
