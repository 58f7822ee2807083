"""Which URLs an untrusted template may load while Chromium renders it.

Default deny: ``data:`` (and in-page ``blob:`` / ``about:``) URLs, the project's asset bucket and
a configured allow-list of URL prefixes. Even an allow-listed URL is refused when its host
resolves to a loopback, private, link-local (169.254.169.254, the instance metadata service),
multicast or reserved address — unless the rule says ``allow_private`` (tests and explicit
private allow-lists only). Hostnames are resolved before deciding, so a public-looking name
that points at 127.0.0.1 is refused too.

The asset bucket's ``assets/`` URLs (:class:`AssetBucket`) are not fetched over the network at
all: the render engine recognises them with :meth:`NetPolicy.asset_path` and reads the object
itself, read-only and scoped to the rendering tenant's prefix (:func:`asset_key`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from posterflow import config

ENV_ASSET_URLS = config.ASSET_URLS.name
ENV_ALLOWLIST = config.RENDER_ALLOWLIST.name
ENV_BUCKET = config.ENV_BUCKET
ASSETS_PREFIX = "assets/"

Resolver = Callable[[str, int], Awaitable[list[str]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_INLINE_SCHEMES = frozenset({"data", "blob", "about"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Cloud metadata endpoints are refused even under ``allow_private``.
_METADATA_NETS = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::/32"),
)


class PolicyError(ValueError):
    """A malformed allow-list entry."""


class AssetRefused(ValueError):
    """An asset URL that does not name exactly one object of the tenant's assets."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


@dataclass(frozen=True)
class AllowRule:
    """``https://host[:port][/path/prefix]``; matched on scheme, host, port and path prefix."""

    scheme: str
    host: str
    port: int
    path_prefix: str
    allow_private: bool = False

    @classmethod
    def parse(cls, prefix: str, *, allow_private: bool = False) -> AllowRule:
        parts = urlsplit(prefix.strip())
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise PolicyError(f"allow-list entry must be an http(s) URL prefix, got {prefix!r}")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise PolicyError(f"allow-list entry must not carry credentials, query or fragment: {prefix!r}")
        return cls(
            scheme=scheme,
            host=parts.hostname.lower().rstrip("."),
            port=parts.port or _DEFAULT_PORTS[scheme],
            path_prefix=parts.path or "/",
            allow_private=allow_private,
        )

    def matches(self, scheme: str, host: str, port: int, path: str) -> bool:
        return (scheme, host, port) == (self.scheme, self.host, self.port) and path.startswith(self.path_prefix)


@dataclass(frozen=True)
class AssetBucket:
    """The project bucket and the URL prefixes of its ``assets/`` (see :func:`asset_bucket_rules`)."""

    bucket: str
    urls: tuple[AllowRule, ...]

    @classmethod
    def for_bucket(cls, bucket: str | None = None) -> AssetBucket | None:
        """From ``bucket`` or ``POSTERFLOW_BUCKET``; ``None`` when neither is set."""
        bucket = bucket or config.bucket_or_none()
        if not bucket:
            return None
        return cls(bucket=bucket, urls=tuple(asset_bucket_rules(bucket)))


def is_public_address(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public_address(address.ipv4_mapped)
    return address.is_global and not address.is_multicast


def _is_metadata(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in net for net in _METADATA_NETS)


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class NetPolicy:
    """Decides each request; async because hostnames are resolved (cached briefly)."""

    def __init__(
        self,
        rules: Iterable[AllowRule | str] = (),
        *,
        assets: AssetBucket | None = None,
        resolver: Resolver | None = None,
        cache_ttl_s: float = 30.0,
    ) -> None:
        self.rules: tuple[AllowRule, ...] = tuple(r if isinstance(r, AllowRule) else AllowRule.parse(r) for r in rules)
        self.assets = assets
        self._resolve = resolver or system_resolver
        self._ttl = cache_ttl_s
        self._cache: dict[tuple[str, int], tuple[float, list[str]]] = {}

    @classmethod
    def from_env(cls, extra: Sequence[AllowRule | str] = ()) -> NetPolicy:
        """Asset bucket URLs (from ``POSTERFLOW_BUCKET`` and ``POSTERFLOW_ASSET_URLS``) plus
        ``POSTERFLOW_RENDER_ALLOWLIST`` (comma-separated URL prefixes)."""
        rules: list[AllowRule | str] = [*asset_bucket_rules(), *extra]
        rules += config.asset_urls()
        rules += config.render_allowlist()
        return cls(rules, assets=AssetBucket.for_bucket())

    def asset_path(self, url: str) -> str | None:
        """The percent-decoded path after the asset bucket's ``assets/`` URL, or ``None`` when
        ``url`` is not under it. Matched on the decoded path because S3 decodes it too: an
        encoded ``%61ssets/`` must not pass for a non-asset URL."""
        if self.assets is None:
            return None
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            return None
        try:
            host = (parts.hostname or "").lower().rstrip(".")
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError:
            return None
        path = unquote(parts.path or "/")
        for rule in self.assets.urls:
            if rule.matches(scheme, host, port, path):
                return path[len(rule.path_prefix):]
        return None

    async def check(self, url: str) -> Decision:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme in _INLINE_SCHEMES:
            return Decision(True, f"{scheme}: URL")
        if scheme not in _DEFAULT_PORTS:
            return Decision(False, f"scheme {scheme or '(none)'}: is not allowed")
        try:
            host = (parts.hostname or "").lower().rstrip(".")
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError:
            return Decision(False, "malformed URL")
        if not host or parts.username or parts.password:
            return Decision(False, "URL without a plain host")
        path = parts.path or "/"
        if ".." in unquote(path).split("/"):
            return Decision(False, "path traversal")
        rule = next((r for r in self.rules if r.matches(scheme, host, port, path)), None)
        if rule is None:
            return Decision(False, f"{scheme}://{host}:{port} is not in the allow-list")
        try:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in await self._lookup(host, port)]
        except (OSError, ValueError) as exc:
            return Decision(False, f"cannot resolve {host}: {exc}")
        if not addresses:
            return Decision(False, f"{host} has no address")
        for address in addresses:
            if _is_metadata(address):
                return Decision(False, f"{host} resolves to link-local/metadata address {address}")
            if not rule.allow_private and not is_public_address(address):
                return Decision(False, f"{host} resolves to non-public address {address}")
        return Decision(True, "allow-listed")

    def check_blocking(self, url: str) -> Decision:
        """:meth:`check` for synchronous callers (e.g. fetching overlay sources in a handler)."""
        return asyncio.run(self.check(url))

    async def _lookup(self, host: str, port: int) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            pass
        now = time.monotonic()
        cached = self._cache.get((host, port))
        if cached and now - cached[0] < self._ttl:
            return cached[1]
        addresses = await self._resolve(host, port)
        self._cache[(host, port)] = (now, addresses)
        return addresses


def asset_bucket_rules(bucket: str | None = None) -> list[AllowRule]:
    """URL prefixes of ``assets/`` in the project bucket: virtual-hosted and path style on AWS,
    or the local cloud's endpoint (``AWS_ENDPOINT_URL``). No ``allow_private`` for the local
    endpoint: the engine serves these URLs from S3 itself and never connects to them."""
    bucket = bucket or config.bucket_or_none()
    if not bucket:
        return []
    region = config.aws_region()
    endpoint = config.aws_endpoint_url()
    if endpoint:
        return [AllowRule.parse(f"{endpoint.rstrip('/')}/{bucket}/{ASSETS_PREFIX}")]
    return [
        AllowRule.parse(f"https://{bucket}.s3.amazonaws.com/{ASSETS_PREFIX}"),
        AllowRule.parse(f"https://{bucket}.s3.{region}.amazonaws.com/{ASSETS_PREFIX}"),
        AllowRule.parse(f"https://s3.{region}.amazonaws.com/{bucket}/{ASSETS_PREFIX}"),
    ]


def _bad_segment(segment: str) -> bool:
    # Empty, "." and ".." segments, backslashes and control characters: S3 keys have no path
    # semantics, but nothing that could be normalised into another tenant's key is accepted.
    return segment in ("", ".", "..") or "\\" in segment or any(ord(c) < 0x20 or ord(c) == 0x7F for c in segment)


def check_asset_prefix(prefix: str) -> str:
    """A tenant's asset prefix must be ``assets/<name>/...`` with plain segments."""
    if not prefix.startswith(ASSETS_PREFIX) or not prefix.endswith("/"):
        raise ValueError(f"asset prefix must look like 'assets/<tenant>/', got {prefix!r}")
    inner = prefix[len(ASSETS_PREFIX):-1]
    if not inner or any(_bad_segment(s) for s in inner.split("/")) or "%" in inner:
        raise ValueError(f"asset prefix must look like 'assets/<tenant>/', got {prefix!r}")
    return prefix


def asset_key(asset_prefix: str | None, relative: str) -> str:
    """The S3 key an asset URL's (decoded) ``relative`` path names under the tenant's prefix.

    Raises :class:`AssetRefused` without a prefix, for a listing (empty or ``.../`` path), a
    traversal segment or a still-encoded (doubly encoded) path."""
    if asset_prefix is None:
        raise AssetRefused("asset URLs are served only for a render with an asset_prefix (tenant)")
    if not relative or relative.endswith("/"):
        raise AssetRefused("asset listing is not allowed")
    if unquote(relative) != relative:
        raise AssetRefused("doubly encoded asset path")
    if any(_bad_segment(s) for s in relative.split("/")):
        raise AssetRefused("path traversal")
    if len(relative.encode()) > 900:
        raise AssetRefused("asset path too long")
    return check_asset_prefix(asset_prefix) + relative
