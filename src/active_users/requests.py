"""What the package reads from a request: the client's IP, a safe session identifier, and a
visitor's cookieless identifier."""

from __future__ import annotations

import functools
import ipaddress
from typing import TYPE_CHECKING

from django.utils.crypto import salted_hmac

from active_users.conf import conf

if TYPE_CHECKING:
    from django.http import HttpRequest

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def hash_session_key(session_key: str | None) -> str:
    """A keyed hash of a session key: stable for the session, useless to hijack it."""
    if not session_key:
        return ""
    return salted_hmac("active_users.session", session_key, algorithm="sha256").hexdigest()[:32]


def _parse_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip().split("%")[0]))
    except ValueError:
        return None


@functools.lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[_Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _is_trusted(ip: str, networks: tuple[_Network, ...]) -> bool:
    address = ipaddress.ip_address(ip)
    return any(address in network for network in networks)


def get_client_ip(request: HttpRequest) -> str | None:
    """The client's address.

    ``REMOTE_ADDR``, unless it is one of ``ACTIVE_USERS_TRUSTED_PROXIES``: then the
    right-most address of ``X-Forwarded-For`` that is not a trusted proxy. Anyone can
    write ``X-Forwarded-For``, so it is never believed from an untrusted peer.
    """
    remote = _parse_ip(request.META.get("REMOTE_ADDR", ""))
    if remote is None or not conf.TRUSTED_PROXIES:
        return remote
    networks = _networks(tuple(conf.TRUSTED_PROXIES))
    if not _is_trusted(remote, networks):
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for candidate in reversed(forwarded.split(",")):
        ip = _parse_ip(candidate)
        if ip is None:
            return remote
        if not _is_trusted(ip, networks):
            return ip
    return remote


def anonymize_ip(ip: str) -> str:
    """IPv4 with the last octet zeroed, IPv6 cut to its /48 network."""
    address = ipaddress.ip_address(ip)
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


def stored_ip(request: HttpRequest) -> str | None:
    """The client's IP as the package keeps it: per ``ACTIVE_USERS_STORE_IP`` and
    ``ACTIVE_USERS_ANONYMIZE_IP``."""
    if not conf.STORE_IP:
        return None
    ip = get_client_ip(request)
    return anonymize_ip(ip) if ip and conf.ANONYMIZE_IP else ip


def visitor_id(request: HttpRequest, day: int) -> str:
    """An anonymous visitor, without a cookie: a keyed hash of the client IP (after trusted
    proxies; truncated first with ``ANONYMIZE_IP``) and the user agent, under a salt made
    from ``SECRET_KEY`` and ``day`` (days since the epoch, UTC), so it changes every day and
    cannot be followed from one day to the next."""
    ip = get_client_ip(request) or ""
    if ip and conf.ANONYMIZE_IP:
        ip = anonymize_ip(ip)
    agent = request.META.get("HTTP_USER_AGENT", "")
    salt = f"active_users.visitor.{day}"
    return salted_hmac(salt, f"{ip}\n{agent}", algorithm="sha256").hexdigest()[:32]
