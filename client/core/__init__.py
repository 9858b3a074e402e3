"""flowdeck's core: what the client, the server and the agent share.

Pure Python: pydantic models, schedules, state names, domain errors, settings
from the environment and Struct/number helpers. Nothing here opens a gRPC
channel or touches SQL (the import-linter contracts in pyproject.toml hold
that line).
"""
