#!/bin/sh
# Lambda Web Adapter's wrapper (/opt/bootstrap) runs this as the function's "handler": start the
# stream function's HTTP server with the layers' packages on the path.
export PYTHONPATH="/opt/python:${LAMBDA_TASK_ROOT}${PYTHONPATH:+:$PYTHONPATH}"
exec python3 "${LAMBDA_TASK_ROOT}/handler.py"
