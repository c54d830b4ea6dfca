"""Throttling of the demo's password sign-in: attempts per client address and per e-mail
address, in moving windows (the ``limits`` library through :class:`tidings.ratelimit.RateLimiter`,
per instance). Every attempt counts, whether the e-mail exists or not, so the throttle does not
tell which e-mails exist either. The client address is the peer's, or the one a trusted proxy
names (``TIDINGS_FORWARDED_ALLOW_IPS``); behind an untrusted proxy every client shares one.
"""

from __future__ import annotations

from tidings.errors import Code, TooManyRequests
from tidings.ratelimit import RateLimiter

PER_ADDRESS = "10/minute"
PER_EMAIL = "5/minute"


class SignInThrottle:
    def __init__(self, per_address: str = PER_ADDRESS, per_email: str = PER_EMAIL) -> None:
        self.address = RateLimiter(per_address)
        self.email = RateLimiter(per_email)

    async def attempt(self, address: str, email: str) -> None:
        """Count one password attempt; ``TooManyRequests`` (429, ``Retry-After``) beyond a limit."""
        try:
            await self.address.hit("demo-sign-in-address", address)
            await self.email.hit("demo-sign-in-email", email.strip().lower()[:254])
        except TooManyRequests as error:
            raise TooManyRequests(
                "Too many sign-in attempts; please wait a minute and try again.",
                code=Code.SIGN_IN_THROTTLED,
                retry_after=error.retry_after,
            ) from error
