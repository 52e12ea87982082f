"""The client side of a BuildKit session: build context, credentials, secrets and exports.

    with Session(context_dir=".", secrets={"dsl-ca-bundle": ca_path}) as session:
        session.attach_docker(docker_host)          # or session.attach_control(channel)
        ... Control.Solve(..., Session=session.id) ...

Imports ``grpc``; import this package only where a build actually runs.
"""

from dsl.engines.buildkit.session._auth import Credential, DockerCredentials
from dsl.engines.buildkit.session._filesend import DirectoryExport, ExporterSink, FileExport
from dsl.engines.buildkit.session._filesync import SyncedDir, Transfer, served_files
from dsl.engines.buildkit.session._patterns import PatternSet, read_ignore_file
from dsl.engines.buildkit.session._session import CONTEXT, Session

__all__ = [
    "CONTEXT",
    "Credential",
    "DirectoryExport",
    "DockerCredentials",
    "ExporterSink",
    "FileExport",
    "PatternSet",
    "Session",
    "SyncedDir",
    "Transfer",
    "read_ignore_file",
    "served_files",
]
