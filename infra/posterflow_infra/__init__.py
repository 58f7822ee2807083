"""posterflow's CDK app: one stack built from the shared resource spec (``posterflow.resources``)."""
