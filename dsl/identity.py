"""Who an environment is, and who owns its running objects: shared by every runner.

An environment is its name plus a short hash of its project directory (the build file's
absolute directory), so two projects both called ``ws`` never share a container:
``ws.1a2b3c4d``. Identity and ownership live on the running objects themselves (Docker labels,
Kubernetes labels/annotations), never in local state, so ``dsl ls``/``ssh``/``down`` work from
any shell and any machine that reaches the engine.
"""

from __future__ import annotations

import datetime
import getpass
import hashlib
import os
import socket
from dataclasses import dataclass

# Labels the runner adds to what the compiler made (which already carries envdsl/name,
# envdsl/function, envdsl/managed-by and envdsl/content-hash).
INSTANCE_LABEL = "envdsl/instance"
PROJECT_LABEL = "envdsl/project"
PROJECT_DIR_LABEL = "envdsl/project-dir"
CONFIG_LABEL = "envdsl/config-hash"
GENERATION_LABEL = "envdsl/generation"
OWNER_LABEL = "envdsl/owner"
CREATED_LABEL = "envdsl/created"
SSH_USER_LABEL = "envdsl/ssh-user"
ENV_NAME_LABEL = "envdsl/name"
MANAGED_BY_LABEL = "envdsl/managed-by"
MANAGED_BY = "envdsl"
SSH_SUFFIX = ".dsl"


def project_hash(project_dir: str) -> str:
    """8 hex digits of SHA-256 of the absolute project directory."""
    return hashlib.sha256(os.path.abspath(project_dir).encode()).hexdigest()[:8]


@dataclass(frozen=True, slots=True)
class Identity:
    """An environment's identity.

    Attributes:
        name: the environment's name (``env.name``).
        instance: its DNS-safe name (``<name>[-<function>]``), as the compilers name objects.
        project_dir: the absolute project directory.
    """

    name: str
    instance: str
    project_dir: str

    @property
    def project(self) -> str:
        return project_hash(self.project_dir)

    @property
    def id(self) -> str:
        """``<instance>.<project hash>``: the container name, unique per project."""
        return f"{self.instance}.{self.project}"

    @property
    def alias(self) -> str:
        """The SSH name that always means this environment (and its ``HostKeyAlias``)."""
        return self.id + SSH_SUFFIX

    @property
    def short_alias(self) -> str:
        """``<instance>.dsl``: what people type, while only one project uses the name."""
        return self.instance + SSH_SUFFIX

    def labels(self) -> dict[str, str]:
        return {INSTANCE_LABEL: self.instance, PROJECT_LABEL: self.project, PROJECT_DIR_LABEL: self.project_dir}


@dataclass(frozen=True, slots=True)
class Claim:
    """Who applied the configuration an object runs, and which generation of it."""

    generation: int
    owner: str
    created: str

    def labels(self) -> dict[str, str]:
        return {GENERATION_LABEL: str(self.generation), OWNER_LABEL: self.owner, CREATED_LABEL: self.created}

    @classmethod
    def from_labels(cls, labels: dict[str, str]) -> Claim:
        try:
            generation = int(labels.get(GENERATION_LABEL, "0"))
        except ValueError:
            generation = 0
        return cls(generation, labels.get(OWNER_LABEL, "?"), labels.get(CREATED_LABEL, "?"))

    def describe(self) -> str:
        return f"generation {self.generation}, by {self.owner}, at {self.created}"


def owner() -> str:
    """``user@host`` of this process, as claims record it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def now() -> str:
    """The current UTC time, RFC 3339 to the second (``2025-01-31T12:00:00Z``)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
