"""Remote kernels: a Jupyter Server (or Enterprise/Kernel Gateway) and SSH tunnels.

* :mod:`.rest` - :class:`ServerClient`, the kernel REST API (stdlib only).
* :mod:`.websocket` - :class:`WebSocketTransport`, the kernel's channels over the
  server's WebSocket (needs the ``websockets`` package, imported on first connect).
* :mod:`.framing` - the two WebSocket framings, with no IO.
* :mod:`.kernel` - :func:`open_server_kernel`: start or find a kernel, and who
  shuts it down.
* :mod:`.sessions` - a notebook's kernel through the sessions API (``--notebook``).
* :mod:`.ssh` - :class:`SSHTunnel`: a connection file's ports through ``ssh -L``.

Nothing here is imported by ``kconsole`` for local kernels.
"""

from __future__ import annotations

from .framing import V1_SUBPROTOCOL, rate_limit_notice, server_status
from .kernel import ServerKernel, open_server_kernel
from .rest import (
    RemoteError,
    RemoteKernelModel,
    RemoteKernelSpec,
    RemoteKernelSpecs,
    ServerClient,
    resolve_token,
    split_server_url,
)
from .ssh import SSHTunnel, TunnelError, parse_host_spec
from .websocket import TransportEvent, WebSocketTransport

__all__ = [
    "V1_SUBPROTOCOL",
    "RemoteError",
    "RemoteKernelModel",
    "RemoteKernelSpec",
    "RemoteKernelSpecs",
    "SSHTunnel",
    "ServerClient",
    "ServerKernel",
    "TransportEvent",
    "TunnelError",
    "WebSocketTransport",
    "open_server_kernel",
    "parse_host_spec",
    "rate_limit_notice",
    "resolve_token",
    "server_status",
    "split_server_url",
]
