"""Owner credentials: what proves that a browser started an experiment, issued and checked by the server.

A credential is ``ID.MAC``: ``ID`` a 256-bit random value, ``MAC`` its HMAC-SHA256 under the server's secret
(both URL-safe base64, 43 characters each). Only a credential whose MAC checks counts, so a value nobody
issued (one planted by a page of another site on the same host, say) is never honored. Run and job files
record the *owner id*, a hash of ``ID``, never the credential.

The secret is ``$LOSSLENS_SECRET`` when set (at least 32 characters: several servers given the same one
accept each other's credentials), else the file :data:`SECRET_FILE` in the runs folder, created on first use
with permissions 0600 (servers sharing a runs folder share it). A runs folder that cannot hold the file
gets a secret for this process only: its credentials then last until the server restarts.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import os
import secrets
import stat
from pathlib import Path

logger = logging.getLogger(__name__)

SECRET_ENV = "LOSSLENS_SECRET"
SECRET_FILE = ".losslens-secret"  # a dot name: the runs folder's listing and exports skip it
MIN_SECRET_CHARS = 32
_PART_CHARS = 43  # 32 bytes in URL-safe base64 without padding


class CredentialError(ValueError):
    """The server's secret cannot be used; the message says what to change."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _mac(secret: bytes, ident: str) -> str:
    return _b64(hmac.new(secret, f"losslens-credential:{ident}".encode(), hashlib.sha256).digest())


def issue(secret: bytes) -> str:
    """A new credential signed with ``secret``."""
    ident = _b64(secrets.token_bytes(32))
    return f"{ident}.{_mac(secret, ident)}"


def verify(secret: bytes, value: object) -> bool:
    """Whether ``value`` is a credential signed with ``secret`` (compared in constant time)."""
    if not isinstance(value, str) or len(value) != 2 * _PART_CHARS + 1 or value[_PART_CHARS] != ".":
        return False
    ident, mac = value[:_PART_CHARS], value[_PART_CHARS + 1 :]
    return hmac.compare_digest(mac.encode("ascii", "replace"), _mac(secret, ident).encode())


def owner_of(credential: str) -> str:
    """The owner id run files and jobs record for ``credential``: a hash of its random part, so they never
    hold what proves ownership."""
    ident = credential.split(".", 1)[0]
    return hashlib.sha256(f"losslens-owner:{ident}".encode()).hexdigest()[:32]


def _secret_from_env() -> bytes | None:
    value = os.environ.get(SECRET_ENV)
    if value is None:
        return None
    if len(value.strip()) < MIN_SECRET_CHARS:
        raise CredentialError(
            f"{SECRET_ENV} must be at least {MIN_SECRET_CHARS} characters (for example the output of "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return value.strip().encode()


def _read_or_create(path: Path) -> bytes:
    """The secret in ``path``, which is created (mode 0600, exclusively) when missing; a file that other
    users may read is made private first."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
            out.flush()
            os.fsync(out.fileno())
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as file:
        if stat.S_IMODE(os.fstat(file.fileno()).st_mode) & 0o077:
            os.fchmod(file.fileno(), 0o600)
            logger.warning("%s could be read by other users; it is now private (mode 0600)", path)
        value = file.read().strip()
    if len(value) < MIN_SECRET_CHARS:
        raise CredentialError(f"{path} holds no usable secret; delete it and a new one is made")
    return value


@functools.cache
def server_secret(runs_root: str) -> bytes:
    """The secret of a server whose runs folder is ``runs_root`` (see the module docstring); one per process
    and folder, so the server's middleware and its sessions check with the same one."""
    from_env = _secret_from_env()
    if from_env is not None:
        return from_env
    path = Path(runs_root) / SECRET_FILE
    try:
        Path(runs_root).mkdir(parents=True, exist_ok=True)
        return _read_or_create(path)
    except OSError as err:
        logger.warning(
            "cannot keep the owner secret in %s (%s): owners last until this server restarts; set %s to keep them",
            path,
            err.strerror or err,
            SECRET_ENV,
        )
        return secrets.token_bytes(32)


def runs_root() -> str:
    """The runs folder the server uses (``$LOSSLENS_RUNS_DIR``, default ``runs``), as a key of
    :func:`server_secret`."""
    return os.path.abspath(os.environ.get("LOSSLENS_RUNS_DIR", "runs"))


CLAIM_SECONDS = 120  # how long a page may take to ask for its session's credential as the browser's cookie


def claim_token(secret: bytes, credential: str, now: float) -> str:
    """A token that asks the server to make ``credential`` the browser's cookie (see :mod:`ui.owner_cookie`),
    valid for :data:`CLAIM_SECONDS` from ``now``: a session hands it to its own page only."""
    expires = int(now) + CLAIM_SECONDS
    return f"{credential}~{expires}~{_mac(secret, f'claim:{credential}:{expires}')}"


def claimed(secret: bytes, token: object, now: float) -> str | None:
    """The credential ``token`` (from :func:`claim_token`) carries, None when it is forged or has expired."""
    if not isinstance(token, str) or token.count("~") != 2:
        return None
    credential, expires, mac = token.split("~")
    if not expires.isdigit() or int(expires) < now or not verify(secret, credential):
        return None
    good = _mac(secret, f"claim:{credential}:{expires}")
    return credential if hmac.compare_digest(mac.encode("ascii", "replace"), good.encode()) else None
