"""Engine drivers: the only code that talks to servers.

``dsl.engines.buildkit`` drives BuildKit (dockerd's embedded one or a standalone buildkitd)
over gRPC. Heavy client libraries (``grpc``, ``docker``) are imported inside the functions
that need them, never at import time of this package.
"""
