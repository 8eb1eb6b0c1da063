"""Asterisk Manager Interface: a safe adapter over panoramisk 1.4 (see ``client``)."""

from ivr.ami.client import (
    AMIActionError,
    AMIAuthError,
    AMIClient,
    AMIConfig,
    AMIConnectionLost,
    AMITimeout,
    AMIUnavailable,
    OriginateResult,
)
from ivr.ami.wire import AMIEncodingError, AMIProtocolError

__all__ = [
    "AMIActionError",
    "AMIAuthError",
    "AMIClient",
    "AMIConfig",
    "AMIConnectionLost",
    "AMIEncodingError",
    "AMIProtocolError",
    "AMITimeout",
    "AMIUnavailable",
    "OriginateResult",
]
