"""Ports as URLs (style.md §b12): one registry, one common :class:`FrameLink` result.

=====================================  ==============================================
URL                                    link
=====================================  ==============================================
``/dev/ttyUSB0``, ``COM3``             L2 MIP over pyserial (U61 for ttyUSB, else U50)
``serial:///dev/ttyACM0?kind=u50``     the same, explicit
``socket://host:port``                 pyserial TCP (e.g. ser2net to a MIP)
``rfc2217://host:port``                pyserial RFC 2217
``loop://``                            pyserial loopback
``cnip://host:port?bind=h:p``          CN/IP data packets over UDP (default port 1628)
``cnip://?bind=h:p&peer_ttl=600``      the same, serving: answers every recent sender
``sim://name?loss=0.1&seed=1``, ``sim``  a node on a simulated power-line channel
=====================================  ==============================================

Serial query options: ``kind=u50|u61``, ``baud=N``, ``phase=1`` (PL phase mode),
``timeout=seconds`` (start-up); other query parameters stay in the pyserial URL.
``sim`` URLs join the channel passed as ``channel=`` (an :class:`AsyncPlChannel`), else a new
private one configured from the query.  Unknown schemes raise :class:`UnknownPortScheme`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit

from ..errors import LocalProtocolError
from .channel import ChannelConfig
from .link import BaseLink, UnknownPortScheme
from .serial_link import SerialLink
from .sim import AsyncPlChannel
from .smip import DriverConfig, MipKind
from .udp import CnipLink

__all__ = ["PORT_SCHEMES", "open_port"]

Opener = Callable[[str, SplitResult, dict[str, Any]], Awaitable[BaseLink]]


def _hostport(text: str, default_port: int) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host:
        host, port = text, ""
    host = host.strip("[]")
    try:
        return host or "127.0.0.1", int(port) if port else default_port
    except ValueError:
        raise LocalProtocolError(f"bad host:port {text!r}") from None


_MIP_KINDS: dict[str, MipKind] = {"u50": "u50", "u61": "u61"}


async def _open_serial(url: str, parts: SplitResult, opts: dict[str, Any]) -> BaseLink:
    query = dict(parse_qsl(parts.query))
    # a URL query option wins over the keyword of the same meaning; both are taken out of
    # ``opts`` so that only pyserial's own keywords reach SerialLink.open
    opt_kind, opt_baud = opts.pop("kind", None), opts.pop("baudrate", None)
    kind_text = query.pop("kind", None) or opt_kind
    baud = query.pop("baud", None) or opt_baud
    phase = query.pop("phase", None)
    timeout = float(query.pop("timeout", opts.pop("startup_timeout", 5.0)))
    kind = _MIP_KINDS.get(kind_text) if isinstance(kind_text, str) else None
    if kind is None and kind_text is not None:
        raise LocalProtocolError(f"kind must be u50 or u61, got {kind_text!r}")
    if parts.scheme in ("", "serial"):
        target = parts.path if parts.scheme == "serial" else url.split("?", 1)[0]
    else:
        # not urlunsplit: it turns ``loop://`` (empty host) into ``loop:``, no pyserial URL
        rest = urlencode(query)
        target = f"{parts.scheme.lower()}://{parts.netloc}{parts.path}" + (f"?{rest}" if rest else "")
    config: DriverConfig | None = opts.pop("config", None)
    if config is None:
        from .serial_link import default_kind

        config = DriverConfig(kind=kind or default_kind(target), phase_mode=phase in ("1", "true", "yes"))
    return await SerialLink.open(
        target, kind=kind, baudrate=int(baud) if baud else None, config=config, startup_timeout=timeout, **opts
    )


async def _open_cnip(url: str, parts: SplitResult, opts: dict[str, Any]) -> BaseLink:
    from ..lon.cnip import PORT_NORMAL

    query = dict(parse_qsl(parts.query))
    peer = _hostport(parts.netloc, PORT_NORMAL) if parts.netloc else None
    bind = _hostport(query["bind"], 0) if "bind" in query else opts.pop("local", ("0.0.0.0", PORT_NORMAL))
    session = int(query["session"]) if "session" in query else opts.pop("session", None)
    kw: dict[str, Any] = {k: opts.pop(k) for k in ("peer_ttl", "max_peers", "clock") if k in opts}
    try:
        for name, conv in (("peer_ttl", float), ("max_peers", int)):
            if name in query:
                kw[name] = conv(query[name])
    except ValueError:
        raise LocalProtocolError(f"bad CN/IP option in {url!r}") from None
    return await CnipLink.open(peer, local=bind, session=session, **kw)


_SIM_KEYS = {
    "loss": float, "loss_alt": float, "corrupt": float, "duplicate": float, "reorder": float,
    "latency": float, "seed": int, "rate": float, "fec": float,
}


async def _open_sim(url: str, parts: SplitResult, opts: dict[str, Any]) -> BaseLink:
    name = parts.netloc or parts.path.strip("/") or "node"
    channel: AsyncPlChannel | None = opts.pop("channel", None)
    if channel is None:
        kw: dict[str, Any] = {}
        for k, v in parse_qsl(parts.query):
            if k not in _SIM_KEYS:
                raise LocalProtocolError(f"unknown sim option {k!r} (known: {', '.join(sorted(_SIM_KEYS))})")
            val = _SIM_KEYS[k](v)
            kw[{"rate": "bit_rate", "fec": "fec_factor"}.get(k, k)] = val
        channel = AsyncPlChannel(ChannelConfig(**kw), time_scale=float(opts.pop("time_scale", 1.0)))
    return channel.link(name)


PORT_SCHEMES: dict[str, Opener] = {
    "": _open_serial,
    "serial": _open_serial,
    "socket": _open_serial,
    "rfc2217": _open_serial,
    "loop": _open_serial,
    "cnip": _open_cnip,
    "sim": _open_sim,
}


async def open_port(url: str, **options: Any) -> BaseLink:
    """Open the port named by ``url`` and return its frame link (see the module table)."""
    if url in ("sim", "cnip"):  # bare scheme names: a default sim node / CN/IP on the default ports
        url += "://"
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if len(scheme) == 1:  # a Windows drive letter, e.g. C:\\...
        scheme = ""
    if not parts.scheme and not url.split("?", 1)[0]:
        raise UnknownPortScheme("empty port URL")
    if url.upper().startswith("COM"):
        scheme = ""
    try:
        opener = PORT_SCHEMES[scheme]
    except KeyError:
        known = ", ".join(f"{s}://" for s in PORT_SCHEMES if s) + ", or a device path"
        raise UnknownPortScheme(f"unknown port scheme {parts.scheme!r} in {url!r} (known: {known})") from None
    return await opener(url, parts, dict(options))
