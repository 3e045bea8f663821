"""A small REST client for Jupyter Server's kernel API (also Enterprise/Kernel Gateway,
and a JupyterHub user's server through the hub's proxy).

Stdlib only (``urllib`` run in a worker thread), so ``kconsole kernels --server``
needs no extra package. Every failure becomes one :class:`RemoteError` whose message
is a single line fit to show the user as it is: the CLI prints ``str(e)`` and exits.

The token is sent as ``Authorization: token <t>``, never in the URL, and never
appears in an error message or a ``repr``. Redirects are not followed (urllib would
send the token on to wherever one points, and a JupyterHub's lead to its HTML login
page): a JupyterHub's refusals are told apart by its ``X-JupyterHub-Version`` header
and its own REST API, so each is one line naming the token that is missing or refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import http.client
import json
import os
import ssl
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import KconsoleError
from ..protocol import MalformedMessage, loads
from ..transport import TransportError

#: Seconds one REST call may take. Starting a kernel is the slow one: the server
#: answers POST /api/kernels only once the kernel process is up.
DEFAULT_TIMEOUT = 60.0

#: The largest REST answer read: kernel lists and models are a few KB, and a server
#: (or something posing as one) that sends more is not read whole into memory.
MAX_BODY_BYTES = 16 * 2**20

#: Path segments of the browser UIs that people paste along with the server URL
#: (``http://host:8888/lab?token=...``): dropped to get the server's base URL.
_UI_SEGMENTS = ("lab", "tree", "notebooks", "nbclassic")


#: Seconds one of the extra requests that explain a refusal may take.
_PROBE_TIMEOUT = 10.0

#: Redirects followed (on the server's own origin) to learn why a JupyterHub sent one.
_MAX_HUB_HOPS = 4


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Every redirect becomes an HTTPError of its 3xx status: an API answer is never a
    redirect, and following one would send the token on (urllib copies the headers)."""

    def redirect_request(self, *args: Any, **kw: Any) -> None:
        return None


class RemoteError(TransportError, KconsoleError):
    """A Jupyter Server request failed; ``str(e)`` is one line for the user.

    A :class:`~kconsole.transport.TransportError`, so a client that handles transport
    failures (an interrupt through REST, say) handles these too.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        #: The HTTP status when the server answered, else None.
        self.status = status


class ServerNotRunning(RemoteError):
    """A JupyterHub user's server is not running (stopped, culled, never started): the
    kernels it had are gone with it."""


class ActionRefused(RemoteError):
    """The server accepts the token but refuses this request (its policy)."""


class TokenRefused(RemoteError):
    """The server refused the token (or wants one): no endpoint opens with it."""


class KernelListRefused(RemoteError):
    """The server accepts the token but will not list its kernels (a gateway's
    ``list_kernels`` is off): a kernel can still be used by its whole id."""


@dataclass(frozen=True)
class RemoteKernelModel:
    """One running kernel as ``GET /api/kernels`` describes it."""

    id: str
    name: str
    execution_state: str = "unknown"
    connections: int = 0
    last_activity: str = ""

    @classmethod
    def from_json(cls, d: Any) -> RemoteKernelModel:
        if not isinstance(d, dict) or not isinstance(d.get("id"), str):
            raise RemoteError("the server sent a kernel model without an id")
        connections = d.get("connections") or 0
        return cls(
            id=d["id"],
            name=str(d.get("name") or ""),
            execution_state=str(d.get("execution_state") or "unknown"),
            connections=connections if isinstance(connections, int) else 0,
            last_activity=str(d.get("last_activity") or ""),
        )


@dataclass(frozen=True)
class RemoteKernelSpec:
    """One kernelspec the server offers (``GET /api/kernelspecs``)."""

    name: str
    display_name: str = ""
    language: str = ""


@dataclass(frozen=True)
class RemoteKernelSpecs:
    """The server's kernelspecs and the name of its default one."""

    default: str
    specs: list[RemoteKernelSpec] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]


@dataclass(frozen=True)
class RemoteSession:
    """One session as ``GET /api/sessions`` describes it: a notebook (or console, or
    file) and the kernel the server runs for it.

    ``path`` is as the client that created the session gave it (JupyterLab: relative
    to the server's root, forward slashes); ``kernel`` is None when the server sent
    none (a session whose kernel is gone).
    """

    id: str
    path: str
    name: str = ""
    type: str = ""
    kernel: RemoteKernelModel | None = None

    @classmethod
    def from_json(cls, d: Any) -> RemoteSession:
        if not isinstance(d, dict) or not isinstance(d.get("id"), str):
            raise RemoteError("the server sent a session without an id")
        path = d.get("path")
        if not isinstance(path, str):
            # The pre-2016 form, which old servers still send beside the new one.
            notebook = d.get("notebook")
            path = notebook.get("path") if isinstance(notebook, dict) else None
        kernel = d.get("kernel")
        return cls(
            id=d["id"],
            path=path if isinstance(path, str) else "",
            name=str(d.get("name") or ""),
            type=str(d.get("type") or ""),
            kernel=RemoteKernelModel.from_json(kernel) if isinstance(kernel, dict) else None,
        )


def split_server_url(url: str) -> tuple[str, str | None]:
    """Normalise a pasted server URL: ``(base_url_with_trailing_slash, token_or_None)``.

    Accepts what ``jupyter server`` prints (``http://127.0.0.1:8888/lab?token=abc``):
    the token is taken out of the query and a trailing UI segment is dropped, while a
    base path (JupyterHub's ``/user/name/``) is kept. A bare ``host:port`` gets
    ``http://``.
    """
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise RemoteError(f"server URL must be http:// or https://, not {parts.scheme}://")
    if parts.username is not None or parts.password is not None:
        # Not echoed: it may hold a password. urllib would take it for part of the host.
        raise RemoteError(
            "the server URL holds a user name or password, which kconsole does not send: "
            "give the server's token with --token"
        )
    if not parts.hostname:
        raise RemoteError(f"server URL {url!r} has no host name")
    token = urllib.parse.parse_qs(parts.query).get("token", [None])[0]
    segments = [s for s in parts.path.split("/") if s]
    if segments and segments[-1] in _UI_SEGMENTS:
        segments.pop()
    path = "/" + "".join(s + "/" for s in segments)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", "")), token


def resolve_token(
    url: str,
    option: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    prompt: Callable[[str], str] | None = getpass.getpass,
    interactive: bool | None = None,
) -> str:
    """The token to use for ``url``: the option, else a ``?token=`` in the URL, else
    ``$JUPYTER_TOKEN``, else asked for with ``prompt`` (getpass: not echoed).

    Only asks when ``interactive`` (default: stdin is a terminal); otherwise, and
    when the user just presses Enter, the token is empty (servers started with
    ``--ServerApp.token=''`` need none). The token is never logged.
    """
    if option:
        return option
    _, from_url = split_server_url(url)
    if from_url:
        return from_url
    env = os.environ if environ is None else environ
    if env.get("JUPYTER_TOKEN"):
        return env["JUPYTER_TOKEN"]
    if interactive is None:
        interactive = sys.stdin is not None and sys.stdin.isatty()
    if prompt is None or not interactive:
        return ""
    base, _ = split_server_url(url)
    try:
        return prompt(f"Token for {base}: ").strip()
    except (EOFError, KeyboardInterrupt):
        raise RemoteError("no token given") from None


class ServerClient:
    """The kernel REST API of one Jupyter Server.

    Every public method is a coroutine; the blocking ``urllib`` call runs in a
    worker thread so the event loop (and a REPL on it) stays responsive.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        insecure: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url, url_token = split_server_url(url)
        self._token = token if token is not None else (url_token or "")
        self.insecure = insecure
        self.timeout = timeout
        self._ssl: ssl.SSLContext | None = None
        if self.base_url.startswith("https:"):
            # System certificates; insecure skips verification for a self-signed
            # server the user chose to trust.
            ctx = ssl.create_default_context()
            if insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self._ssl = ctx
        # Proxies from the environment apply (as for any other HTTP client), except
        # that urllib's own no_proxy handling decides for loopback.
        handlers: list[Any] = [_NoRedirect]
        if self._ssl:
            handlers.append(urllib.request.HTTPSHandler(context=self._ssl))
        self._opener = urllib.request.build_opener(*handlers)

    def __repr__(self) -> str:
        # Never the token.
        return f"ServerClient({self.base_url!r})"

    # -- what the WebSocket transport needs ----------------------------------------------

    @property
    def auth_headers(self) -> dict[str, str]:
        """The headers that authenticate a request (empty without a token)."""
        return {"Authorization": f"token {self._token}"} if self._token else {}

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for ``https`` servers (None for plain ``http``)."""
        return self._ssl

    def ws_url(self, path: str) -> str:
        """The ``ws://``/``wss://`` URL of ``path`` (relative to the base URL)."""
        http = urllib.parse.urljoin(self.base_url, path)
        return "ws" + http[len("http") :]

    # -- the API -------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        """``GET /api/status``: whether the server answers and accepts the token."""
        d = await self._json("GET", "api/status")
        if not isinstance(d, dict):
            raise RemoteError("the server's status is not a JSON object")
        return d

    async def list_kernelspecs(self) -> RemoteKernelSpecs:
        """The kernelspecs the server can start."""
        d = await self._json("GET", "api/kernelspecs")
        entries = d.get("kernelspecs", {}) if isinstance(d, dict) else None
        if not isinstance(entries, dict):
            raise RemoteError("the server's kernelspec list is not a JSON object")
        specs = []
        for name, entry in sorted(entries.items()):
            spec = entry.get("spec") if isinstance(entry, dict) else None
            if not isinstance(spec, dict):
                spec = {}
            specs.append(
                RemoteKernelSpec(
                    name=name,
                    display_name=str(spec.get("display_name") or name),
                    language=str(spec.get("language") or ""),
                )
            )
        return RemoteKernelSpecs(default=str(d.get("default") or ""), specs=specs)

    async def list_kernels(self) -> list[RemoteKernelModel]:
        """The kernels running on the server.

        Raises :class:`KernelListRefused` when the server accepts the token but does
        not list kernels (Enterprise and Kernel Gateway by default).
        """
        try:
            d = await self._json("GET", "api/kernels")
        except RemoteError as e:
            if e.status != 403 or not isinstance(e, ActionRefused):
                raise  # the token itself (a hub's words for it included), or no 403
            raise KernelListRefused(
                "the server does not list its kernels (a gateway's list_kernels is off)", 403
            ) from e
        if not isinstance(d, list):
            raise RemoteError("the server's kernel list is not a JSON list")
        return [RemoteKernelModel.from_json(k) for k in d]

    async def start_kernel(
        self, name: str | None = None, env: Mapping[str, str] | None = None
    ) -> RemoteKernelModel:
        """Start a kernel (the server's default kernelspec when ``name`` is None).

        ``env`` travels in the request as jupyter_server's gateway client sends it:
        Enterprise and Kernel Gateway hand it to the kernel (EG also decides by its
        ``KERNEL_USERNAME`` who may start one); Jupyter Server ignores it.
        """
        body: dict[str, Any] = {"name": name} if name else {}
        if env:
            body["env"] = dict(env)
        try:
            d = await self._json("POST", "api/kernels", body, expect=(201,))
        except RemoteError as e:
            # jupyter_server answers an unknown name with a bare 500; say what it means.
            if name and e.status in (400, 404, 500):
                try:
                    specs = await self.list_kernelspecs()
                except RemoteError:
                    raise e from None
                if name not in specs.names:
                    available = ", ".join(specs.names) or "none"
                    raise RemoteError(
                        f"the server has no kernelspec named {name!r} (available: {available})",
                        e.status,
                    ) from e
            raise
        return RemoteKernelModel.from_json(d)

    async def get_kernel(self, kernel_id: str) -> RemoteKernelModel:
        """The model of one kernel; RemoteError (status 404) when there is none."""
        return RemoteKernelModel.from_json(
            await self._json("GET", self._kernel_path(kernel_id), kernel_id=kernel_id)
        )

    async def delete_kernel(self, kernel_id: str) -> None:
        """Shut a kernel down and forget it."""
        await self._json("DELETE", self._kernel_path(kernel_id), expect=(204,), kernel_id=kernel_id)

    async def interrupt_kernel(self, kernel_id: str) -> None:
        """Interrupt the kernel (the server signals it or sends interrupt_request)."""
        await self._json(
            "POST",
            self._kernel_path(kernel_id, "interrupt"),
            {},
            expect=(204,),
            kernel_id=kernel_id,
        )

    async def restart_kernel(self, kernel_id: str) -> RemoteKernelModel:
        """Restart the kernel in place (same id); returns its new model."""
        return RemoteKernelModel.from_json(
            await self._json(
                "POST", self._kernel_path(kernel_id, "restart"), {}, kernel_id=kernel_id
            )
        )

    async def list_sessions(self) -> list[RemoteSession]:
        """The sessions on the server (``GET /api/sessions``): which notebook each
        kernel runs for. Gateways without the sessions API answer 404."""
        d = await self._json("GET", "api/sessions")
        if not isinstance(d, list):
            raise RemoteError("the server's session list is not a JSON list")
        return [RemoteSession.from_json(s) for s in d]

    async def create_session(
        self, path: str, kernel_name: str | None, *, kind: str = "notebook", name: str = ""
    ) -> RemoteSession:
        """``POST /api/sessions`` as JupyterLab sends it when a notebook is opened: the
        server starts a kernel for ``path`` (its default kernelspec when
        ``kernel_name`` is None), or returns the session ``path`` already has."""
        body: dict[str, Any] = {"path": path, "type": kind, "name": name, "kernel": {}}
        if kernel_name:
            body["kernel"]["name"] = kernel_name
        d = await self._json("POST", "api/sessions", body, expect=(201,))
        return RemoteSession.from_json(d)

    async def get_contents(self, path: str, *, content: bool = True) -> dict[str, Any]:
        """``GET /api/contents/PATH``: a file's model (with its content unless
        ``content`` is false); RemoteError with status 404 when there is no such file."""
        quoted = urllib.parse.quote(path.strip("/"), safe="/")
        d = await self._json("GET", f"api/contents/{quoted}?content={int(content)}")
        if not isinstance(d, dict):
            raise RemoteError(f"the server's model of {path} is not a JSON object")
        return d

    # -- plumbing ------------------------------------------------------------------------

    @staticmethod
    def _kernel_path(kernel_id: str, action: str | None = None) -> str:
        path = "api/kernels/" + urllib.parse.quote(kernel_id, safe="")
        return f"{path}/{action}" if action else path

    async def _json(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        expect: tuple[int, ...] = (200,),
        kernel_id: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        # On a daemon thread of its own, not asyncio.to_thread: the default executor is
        # joined when the event loop closes, so a Ctrl-C during a call to a server that
        # does not answer would wait out the whole timeout before the console can leave.
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()

        def settle(ok: bool, value: Any) -> None:
            if done.done():
                return  # the caller gave up (cancelled)
            if ok:
                done.set_result(value)
            else:
                done.set_exception(value)

        def call() -> None:
            try:
                result: tuple[bool, Any] = (
                    True,
                    self.request_sync(
                        method, path, body, expect=expect, kernel_id=kernel_id, timeout=timeout
                    ),
                )
            except Exception as e:
                result = (False, e)
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(settle, *result)

        threading.Thread(target=call, name="kconsole-rest", daemon=True).start()
        # urllib's timeout bounds each read of the socket, not the call: a server that
        # drip-feeds its answer (a header line a second) would hold it forever. The
        # whole call gets the timeout too (plus a moment, so that a silent server gets
        # urllib's own error); the thread is left to end when the server lets go.
        limit = timeout or self.timeout
        try:
            return await asyncio.wait_for(done, limit + min(1.0, limit / 4))
        except asyncio.TimeoutError:
            raise RemoteError(self._no_answer(limit)) from None

    def request_sync(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        expect: tuple[int, ...] = (200,),
        kernel_id: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One blocking request; the decoded JSON answer (None when empty).

        Public for callers with no event loop (and for the benchmark); the
        coroutine methods above are the API.
        """
        url = urllib.parse.urljoin(self.base_url, path)
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Accept": "application/json", **self.auth_headers}
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self._opener.open(req, timeout=timeout or self.timeout) as resp:
                status = resp.status
                # One byte more than allowed tells an answer at the limit from a larger one.
                raw = resp.read(MAX_BODY_BYTES + 1)
                ctype = resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            raise self._http_error(e, method, path, kernel_id) from e
        except urllib.error.URLError as e:
            raise RemoteError(self._unreachable(e.reason)) from e
        except TimeoutError:
            raise RemoteError(self._no_answer(timeout or self.timeout)) from None
        except (ConnectionError, OSError) as e:
            raise RemoteError(self._unreachable(e)) from e
        except http.client.HTTPException as e:  # a truncated or garbled answer
            raise RemoteError(
                f"{method} /{path}: the server's HTTP answer is broken ({type(e).__name__})"
            ) from e
        if status not in expect:
            raise RemoteError(f"{method} /{path}: unexpected HTTP {status}", status)
        if len(raw) > MAX_BODY_BYTES:
            raise RemoteError(
                f"{method} /{path}: the server's answer is larger than "
                f"{MAX_BODY_BYTES // 2**20} MiB; not read",
                status,
            )
        if not raw:
            return None
        if "json" not in ctype:
            raise RemoteError(
                f"{self.base_url} does not look like a Jupyter server "
                f"(got {ctype or 'no content type'} for /{path})",
                status,
            )
        try:
            return loads(raw)
        except MalformedMessage as e:
            raise RemoteError(f"{method} /{path}: the server's answer is {e}") from e

    def _no_answer(self, limit: float) -> str:
        return f"the Jupyter server at {self.base_url} did not answer within {limit:g} s"

    def _token_accepted(self, refused_path: str) -> bool:
        """Whether the token opens a read-only endpoint (the kernelspecs, which every
        kind of server has), to tell a refused token from a refused action."""
        if refused_path == "api/kernelspecs":
            return False
        try:
            self.request_sync("GET", "api/kernelspecs", timeout=min(self.timeout, 10.0))
        except RemoteError:
            return False
        return True

    def _unreachable(self, reason: object) -> str:
        if isinstance(reason, ssl.SSLCertVerificationError):
            return (
                f"the TLS certificate of {self.base_url} is not trusted "
                f"({reason.verify_message}); --insecure skips the check"
            )
        if isinstance(reason, OSError) and reason.strerror:
            why = reason.strerror
        else:
            why = str(reason) or type(reason).__name__
        return f"cannot reach the Jupyter server at {self.base_url}: {why}"

    def _http_error(
        self, e: urllib.error.HTTPError, method: str, path: str, kernel_id: str | None
    ) -> RemoteError:
        status = e.code
        if 300 <= status < 400:
            return _as_error(self._redirected(e, method, path), status)
        # A refusal's traceback (tornado's HTTPError) says no more than its status.
        detail = _error_detail(e, traceback=status not in (401, 403))
        if status in (401, 403):
            # Whose fault is told by the same token on a read-only endpoint: a refused
            # token opens none, while an action refused to a good one (a gateway that
            # lists no sessions, EG's "User 'x' is not authorized ...") is the server's
            # policy, with its own reason when it gives one, however bare. A bad token
            # can also read "'_xsrf' argument missing" (Jupyter Server checks XSRF on
            # unauthenticated POSTs): its words are not shown.
            if self._token_accepted(path):
                tail = f": {detail}" if detail else f" (HTTP {status})"
                return ActionRefused(f"the server refused {method} /{path}{tail}", status)
            if _from_hub(e.headers):
                return _as_error(self._hub_refusal(method, path), status)
            what = "refused the token" if self._token else "requires a token"
            return TokenRefused(f"server {what} (HTTP {status})", status)
        if status == 404 and kernel_id is not None:
            return RemoteError(f"no kernel with id {kernel_id} on the server", status)
        if status == 404:
            hub, where = self._hub_where()
            if where is None and _from_hub(e.headers):
                return RemoteError(self._not_a_user_server(hub), status)
            return RemoteError(
                f"{self.base_url} has no /{path} (HTTP 404): is it a Jupyter server?", status
            )
        tail = f": {detail}" if detail else ""
        return RemoteError(f"{method} /{path} failed (HTTP {status}){tail}", status)

    # -- JupyterHub: which token is missing or refused -----------------------------------

    def _hub_where(self) -> tuple[str, str | None]:
        """``(hub_url, server_path)``: the JupyterHub's own base URL (its base_url
        prefix kept) and the user's server path on it, from the server URL
        (``http://h:8000/user/ada/`` -> ``http://h:8000/``, ``/user/ada/``); the path
        is None when the URL names no user's server (the hub itself was given)."""
        parts = urllib.parse.urlsplit(self.base_url)
        segments = [s for s in parts.path.split("/") if s]
        cut = next((i for i, s in enumerate(segments[:-1]) if s == "user"), None)
        if cut is None and segments and segments[-1] == "hub":  # the hub's own pages
            segments.pop()
        prefix = "/" + "".join(s + "/" for s in segments[:cut])
        hub = urllib.parse.urlunsplit((parts.scheme, parts.netloc, prefix, "", ""))
        return hub, parts.path if cut is not None else None

    def _not_a_user_server(self, hub: str) -> str:
        return (
            f"{self.base_url} is a JupyterHub, not a user's server on it: give the "
            f"server's URL ({hub}user/NAME/) as --server"
        )

    @staticmethod
    def _hub_need(hub: str, where: str | None, *, scope: bool = False) -> str:
        """What to give: a token with access to the server, where one is made."""
        what = "with the access:servers scope for it" if scope else f"with access to {where}"
        return (
            f"give a JupyterHub API token {what} (from {hub}hub/token) "
            "with --token or $JUPYTER_TOKEN"
        )

    def _hub_refusal(self, method: str, path: str, *, probe: bool = True) -> str | RemoteError:
        """A JupyterHub refused the request (401/403): no token, a token the hub does
        not know, one whose owner has no access to this server (the hub's
        ``GET hub/api/user`` tells a token's owner), or, when the hub itself answered
        for a server that is not running, what a GET of the server says of it."""
        hub, where = self._hub_where()
        if where is None:
            return self._not_a_user_server(hub)
        if probe and (method, path) != ("GET", "api/kernelspecs"):
            # The hub refuses a POST for a server that is not running where a GET is
            # redirected (and so explained): ask with a GET.
            try:
                self.request_sync(
                    "GET", "api/kernelspecs", timeout=min(self.timeout, _PROBE_TIMEOUT)
                )
            except RemoteError as e:
                if e.status is not None and 300 <= e.status < 400:
                    return e
        if not self._token:
            return f"the JupyterHub at {hub} requires a token: {self._hub_need(hub, where)}"
        owner = self._hub_token_owner(hub)
        if owner is None:
            return f"the JupyterHub at {hub} does not accept the token: " + self._hub_need(
                hub, where
            )
        return (
            f"the JupyterHub at {hub} knows the token (of {owner}) but it has no access to "
            f"{where}: {self._hub_need(hub, where, scope=True)}"
        )

    def _hub_token_owner(self, hub: str) -> str | None:
        """``user 'ada'`` or ``service 'x'``: whose the token is, by the hub's
        ``GET hub/api/user``; None when the hub refuses it (or does not answer)."""
        req = urllib.request.Request(
            urllib.parse.urljoin(hub, "hub/api/user"),
            headers={"Accept": "application/json", **self.auth_headers},
        )
        try:
            with self._opener.open(req, timeout=min(self.timeout, _PROBE_TIMEOUT)) as resp:
                d = loads(resp.read(64 * 1024))
        except (
            urllib.error.URLError,
            OSError,
            http.client.HTTPException,
            MalformedMessage,
            ValueError,
        ):
            return None
        if not isinstance(d, dict) or not isinstance(d.get("name"), str):
            return None
        kind = d.get("kind") if d.get("kind") in ("user", "service") else "user"
        return f"{kind} {_one_line(d['name'])!r}"

    def _redirected(self, e: urllib.error.HTTPError, method: str, path: str) -> str | RemoteError:
        """What a redirect answering ``path`` means, in one line.

        A JupyterHub's proxy sends a request for a user's server that is not running
        (or not there) to the hub, which redirects it to ``hub/user/NAME/...`` and
        from there to its login page (no token, or one the hub does not accept), or
        answers 424/503 (the server is not running) or 404 (not this token's to use).
        Those hops are followed here, on the server's own origin only, to tell which.
        """
        hub_url, where = self._hub_where()
        need = self._hub_need(hub_url, where)
        origin = urllib.parse.urlsplit(self.base_url)[:2]
        url = e.geturl() or urllib.parse.urljoin(self.base_url, path)
        headers: Any = e.headers or {}
        hub = _from_hub(headers)
        location = ""
        for _ in range(_MAX_HUB_HOPS):
            location = urllib.parse.urljoin(url, headers.get("Location") or "")
            target = urllib.parse.urlsplit(location)
            if location == url or target[:2] != origin:
                break
            hub = hub or "/hub/" in target.path
            if hub and where is None:
                return self._not_a_user_server(hub_url)
            if target.path.endswith("/login") or "/oauth2/authorize" in target.path:
                if not hub:
                    return (
                        f"{self.base_url} redirects to its login page: give the server's "
                        "token (--token or $JUPYTER_TOKEN)"
                    )
                why = "it does not accept the token" if self._token else "no token was given"
                return f"the JupyterHub at {hub_url} redirects to its login page ({why}): {need}"
            if not hub:
                break
            req = urllib.request.Request(
                location, headers={"Accept": "application/json", **self.auth_headers}
            )
            try:
                with self._opener.open(req, timeout=min(self.timeout, _PROBE_TIMEOUT)):
                    break  # an answer, not a refusal: nothing more to learn
            except urllib.error.HTTPError as hop:
                url, headers = location, hop.headers or {}
                if 300 <= hop.code < 400:
                    continue
                detail = _error_detail(hop, traceback=False)
                if hop.code in (401, 403):
                    return self._hub_refusal("GET", path, probe=False)
                if hop.code == 404:
                    return (
                        f"the JupyterHub at {hub_url} has no server at {where} that the "
                        f"token can use: {need}"
                    )
                if hop.code in (424, 503):  # the hub's words name the hop's path: ours
                    return ServerNotRunning(
                        f"the JupyterHub at {hub_url} has no server running at {where}: "
                        f"start it (or wait for it to start) at {hub_url}hub/home",
                        e.code,
                    )
                tail = f": {detail}" if detail else ""
                return f"the JupyterHub at {hub_url} answered HTTP {hop.code} for {where}{tail}"
            except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError):
                # ValueError: a Location http.client cannot send (not ASCII, say)
                break
        shown = _one_line(location) or "elsewhere"
        if hub and where is None:
            return self._not_a_user_server(hub_url)
        if hub:  # to a page of its own (spawn-pending: the server is starting, say)
            return (
                f"the JupyterHub at {hub_url} redirects {method} /{path} to {shown}: is the "
                f"server at {where} running? (see {hub_url}hub/home)"
            )
        return (
            f"{self.base_url} redirects /{path} to {shown} (HTTP {e.code}): "
            "give the server's own URL as --server"
        )


#: Reasons that say no more than the status code does (tornado's and Jupyter's words).
_GENERIC_REASONS = frozenset(
    s.casefold()
    for s in (
        "Forbidden",
        "Unauthorized",
        "Not Found",
        "Bad Request",
        "Internal Server Error",
        "Unknown server error",
        "Service Unavailable",
        "Bad Gateway",
        "Gateway Timeout",
    )
)
#: The longest reason shown: one line of a terminal, not a server's whole log.
_MAX_DETAIL = 300


def _error_detail(e: urllib.error.HTTPError, *, traceback: bool = True) -> str:
    """The server's one-line reason from a JSON error body ({message, reason, traceback}):
    the first of ``message`` and ``reason`` that says more than the status, else the
    exception line that ends a traceback; empty when the body tells nothing."""
    try:
        d = loads(e.read(64 * 1024) or b"{}")
    except (MalformedMessage, OSError):
        return ""
    if not isinstance(d, dict):
        return ""
    for key in ("message", "reason"):
        text = _one_line(d.get(key))
        if text and text.casefold().rstrip(".") not in _GENERIC_REASONS:
            return text
    tb = d.get("traceback")
    if traceback and isinstance(tb, str):
        lines = [ln.strip() for ln in tb.splitlines() if ln.strip()]
        if lines:
            # "jupyter_client.kernelspec.NoSuchKernel: No such kernel named x": the
            # module path is noise to a console user.
            head, sep, rest = lines[-1].partition(": ")
            return _one_line(head.rsplit(".", 1)[-1] + sep + rest)
    return ""


def _as_error(reason: str | RemoteError, status: int) -> RemoteError:
    return reason if isinstance(reason, RemoteError) else RemoteError(reason, status)


def _from_hub(headers: Any) -> bool:
    """Whether an answer came from JupyterHub (the hub, or a user's server it spawned:
    both send their version in ``X-JupyterHub-Version``)."""
    return bool(headers and headers.get("X-JupyterHub-Version"))


def _one_line(value: object) -> str:
    """``value``'s first line as plain printable text, capped at ``_MAX_DETAIL``."""
    if not isinstance(value, str):
        return ""
    text = next((ln.strip() for ln in value.splitlines() if ln.strip()), "")
    # A server's words must not drive the terminal.
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


def kernel_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``env`` of a start request, as jupyter_server's gateway client builds it:
    every ``KERNEL_*`` variable of this process, ``KERNEL_USERNAME`` defaulting to the
    login name (Enterprise Gateway refuses a start without one it accepts), then
    ``extra`` (``--env NAME=VALUE``) on top."""
    env = {k: v for k, v in os.environ.items() if k.startswith("KERNEL_")}
    if "KERNEL_USERNAME" not in env:
        with contextlib.suppress(Exception):  # no passwd entry, no $USER: send none
            env["KERNEL_USERNAME"] = getpass.getuser()
    env.update(extra or {})
    return env
