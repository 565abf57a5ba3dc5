"""A worker's media relay and SDP seam, built from the configuration at start-up.

Each media interface gives a ``MediaSite``: a pool over this worker's slice of its port
range, bound to its bind address, and the addresses its SDP advertises (the configured
public ones for 1:1 NAT, else the bind address, else, for a wildcard bind, the local
address of the route toward the first SIP destination), and its DTLS contexts: the
interface's certificate or a fresh self-signed one, made once per worker and used by every
call through that interface (its fingerprint goes into each SDP written for a leg there).
"""

from __future__ import annotations

import ipaddress

import trio

from rtcgw.config import GatewayConfig, MediaInterface
from rtcgw.media.certificates import DtlsCertificate, generate_certificate, load_certificate
from rtcgw.media.dtls import DtlsContexts, DtlsSettings
from rtcgw.worker.boot import WorkerBoot
from rtcgw.worker.media.events import MediaEventSink
from rtcgw.worker.media.ports import PortPool, worker_slice
from rtcgw.worker.media.relay import MediaRelay
from rtcgw.worker.media.seam import MediaSeam
from rtcgw.worker.media.session import MediaEndpoint, MediaSite
from rtcgw.worker.settings import facing_address
from rtcgw.worker.timeline import CallTimelines

__all__ = ["build_media"]


def build_media(
    boot: WorkerBoot,
    index: int,
    *,
    on_event: MediaEventSink,
    timelines: CallTimelines | None = None,
) -> tuple[MediaRelay, MediaSeam]:
    """The relay (to run as a task) and the seam (to give the B2BUA) of worker ``index``;
    ``on_event`` takes what the relay tells the B2BUA (media timeouts, DTMF digits), and
    ``timelines``, if given, the calls' media milestones for ``rtcgw ctl call``.

    Raises:
        MediaConfigError: the DTLS certificate, key or CA file cannot be used.
        ValueError: the port range cannot be split between the workers.
    """
    config = boot.config
    relay = MediaRelay()
    sites = {
        medium.name: _site(config, medium, index, max(1, boot.worker_count))
        for medium in config.media
    }
    endpoint = MediaEndpoint(relay, trio.current_time)
    seam = MediaSeam(
        config,
        endpoint,
        sites,
        media_timeout_s=config.gateway.media_timeout_s,
        on_event=on_event,
        timelines=timelines,
    )
    return relay, seam


def _certificate(medium: MediaInterface) -> DtlsCertificate:
    if medium.dtls_certificate is not None and medium.dtls_key is not None:
        return load_certificate(medium.dtls_certificate, medium.dtls_key)
    return generate_certificate(medium.dtls_key_type)


def _site(config: GatewayConfig, medium: MediaInterface, index: int, count: int) -> MediaSite:
    first, last = worker_slice(medium.rtp_port_range, index, count)
    bind = str(medium.bind_address)
    advertised = tuple(str(a) for a in medium.advertised_addresses)
    if not advertised:
        address = ipaddress.ip_address(bind)
        if address.is_unspecified:
            advertised = (_facing(config, ipv6=address.version == 6),)
        else:
            advertised = (bind,)
    return MediaSite(PortPool(bind, first, last), advertised, _dtls(medium))


def _dtls(medium: MediaInterface) -> DtlsContexts:
    settings = DtlsSettings(
        certificate=_certificate(medium),
        mtu=medium.dtls_mtu,
        ca_file=medium.dtls_ca,
        require_peer_certificate=medium.dtls_require_peer_certificate,
    )
    return DtlsContexts(settings)


def _facing(config: GatewayConfig, *, ipv6: bool) -> str:
    for realm in config.realms:
        for agent in realm.call_agents:
            if agent.destination is not None:
                destination = agent.destination
                return facing_address(destination.host, destination.port_or_default, ipv6=ipv6)
    return "::1" if ipv6 else "127.0.0.1"
