"""Finalize: the results archive (ZIP + manifests), the notification email with its download
link, and the signed webhook; the tasks the finalize state machine runs are in
:mod:`posterflow.finalize.workflow`."""
