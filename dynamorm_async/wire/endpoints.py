"""Where requests go: explicit URL, environment, or the region's public endpoint."""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

import attrs

from ..errors import InvalidInput

__all__ = ["Endpoint", "NoRegion", "resolve_endpoint", "resolve_region"]


class NoRegion(InvalidInput):
    """No region was given and none is configured in the environment."""


@attrs.frozen
class Endpoint:
    """A resolved endpoint: ``url`` (scheme://host[:port]/path), ``host`` and ``region``."""

    url: str
    host: str
    region: str


def resolve_region(region: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The explicit region, else ``AWS_REGION``, else ``AWS_DEFAULT_REGION``, else None."""
    env = os.environ if environ is None else environ
    return region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None


def resolve_endpoint(
    region: str | None = None,
    endpoint_url: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Endpoint:
    """Resolve the endpoint the way the AWS SDKs do.

    Order: ``endpoint_url``, ``AWS_ENDPOINT_URL_DYNAMODB``, ``AWS_ENDPOINT_URL``, then
    ``https://dynamodb.<region>.amazonaws.com`` (``.com.cn`` in China regions). A custom
    endpoint without a region signs for ``us-east-1``, which local servers accept.
    """
    env = os.environ if environ is None else environ
    url = endpoint_url or env.get("AWS_ENDPOINT_URL_DYNAMODB") or env.get("AWS_ENDPOINT_URL")
    reg = resolve_region(region, env)
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInput(f"endpoint URL {url!r} must look like http(s)://host[:port]")
        path = parts.path or "/"
        return Endpoint(f"{parts.scheme}://{parts.netloc}{path}", parts.netloc, reg or "us-east-1")
    if not reg:
        raise NoRegion(
            "no AWS region: pass region=..., or set AWS_REGION / AWS_DEFAULT_REGION, "
            "or give endpoint_url for a local DynamoDB"
        )
    suffix = "amazonaws.com.cn" if reg.startswith("cn-") else "amazonaws.com"
    host = f"dynamodb.{reg}.{suffix}"
    return Endpoint(f"https://{host}/", host, reg)
