"""The local cloud: embedded AWS, the Lambda runtime, API Gateway emulation, the CLI.

Never shipped to Lambda; it runs the same handlers and boto3 calls as AWS does.
"""
