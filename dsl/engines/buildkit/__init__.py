"""BuildKit over gRPC: connections, the gateway-forwarder solve, progress, cache.

Import the submodules you need; nothing here imports ``grpc`` at package import time.
"""
