"""Standard Webhooks signatures with the standard library only.

wxauth signs each event (and checks each app_api call) like this:
webhook-signature is "v1," + base64(HMAC-SHA256(key, id + "." + timestamp +
"." + body)), where key is the base64 part of the "whsec_..." secret and
timestamp is webhook-timestamp, in unix seconds.
"""

import base64
import hashlib
import hmac
import re

# Signatures older or newer than this many seconds are refused.
TOLERANCE = 5 * 60


class MissingHeaders(Exception):
    """A webhook-id, webhook-timestamp or webhook-signature header is missing."""


class BadSignature(Exception):
    """The signature does not match, or its timestamp is too far from now."""


def _key(secret):
    return base64.b64decode(secret.removeprefix("whsec_"), validate=True)


def sign(secret, msg_id, timestamp, body):
    """Returns the webhook-signature value for body (bytes)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify(secret, headers, body, now):
    """Checks the signature of body; headers has a case-insensitive get.

    now is the current unix time. Raises MissingHeaders or BadSignature.
    """
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not msg_id or not timestamp or not signatures:
        raise MissingHeaders("missing webhook-id, webhook-timestamp or webhook-signature")
    if not re.fullmatch(r"[0-9]{1,12}", timestamp):
        raise BadSignature("webhook-timestamp is not unix seconds")
    if abs(now - int(timestamp)) > TOLERANCE:
        raise BadSignature("webhook-timestamp is more than 5 minutes from now")
    expected = sign(secret, msg_id, timestamp, body).encode()
    # Several signatures may be sent, space-separated (key rotation).
    for candidate in signatures.split(" "):
        if candidate.startswith("v1,") and hmac.compare_digest(candidate.encode(), expected):
            return
    raise BadSignature("no matching signature")
