"""The splitter: uploads and manifests into per-item work, in checkpointed chunks."""
