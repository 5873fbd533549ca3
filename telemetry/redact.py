"""Keep credentials out of anything this package reports (health output, logs, metrics)."""

import re

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def redact_url_credentials(text: str) -> str:
    """Replace `user:password@` in any URL inside `text` with `***@`."""
    return _USERINFO.sub(r"\g<scheme>***@", text)
