"""fn stream: Server-Sent Events job streams (``GET /api/templates/job/{id}/stream``,
``GET /api/batch/jobs/{id}/stream``).

Not a Lambda handler: an HTTP server. In AWS, Lambda Web Adapter (the layer, through
``AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap``) runs ``run.sh``, which starts this module, and
forwards each API Gateway request to it on ``AWS_LWA_PORT``, streaming the answer back
(``AWS_LWA_INVOKE_MODE=response_stream``). The local cloud's gateway runs the same server
in-process (``posterflow.progress.sse_server.start_in_thread``).
"""

from __future__ import annotations

from posterflow.progress import sse_server

if __name__ == "__main__":
    sse_server.serve()
