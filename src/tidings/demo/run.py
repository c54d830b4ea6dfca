"""``make demo``: one demo tenant, a ready API key and stream token, and a curl line."""

from __future__ import annotations

import asyncio
import logging

from tidings.config import Settings


async def bootstrap(settings: Settings) -> tuple[str, str]:
    """Create the demo tenant (once) and a fresh API key and stream token."""
    from tidings.delivery.hub import Hub
    from tidings.delivery.memory import MemoryBroker
    from tidings.errors import Conflict
    from tidings.metrics import Metrics
    from tidings.service import Tidings
    from tidings.store import Store

    store = Store(settings.database_url)
    try:
        await store.migrate()
        metrics = Metrics()
        service = Tidings(
            settings,
            store,
            MemoryBroker(),
            Hub(store, metrics, buffer=1, max_per_user=1, max_per_tenant=1),
            metrics,
        )
        try:
            await service.create_tenant("jump-joy", "Jump Joy Rentals")
        except Conflict:
            pass
        _, key = await service.create_key("jump-joy", "demo", ["publish", "tokens"])
        token, _ = service.mint_token("jump-joy", "ann", ["owner"], ttl=settings.token_max_ttl)
        return key, token
    finally:
        await store.close()


def run_demo(host: str, port: int) -> None:
    from tidings.app import create_app
    from tidings.server import serve

    settings = Settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    key, token = asyncio.run(bootstrap(settings))
    base = f"http://{host}:{port}"
    print(
        f"""
tidings demo on {base}

  API key (tenant jump-joy):  {key}
  stream token (user ann):    {token}

  watch the stream:
    curl -N -H 'Authorization: Bearer {token}' {base}/v1/stream
  publish:
    curl -X POST {base}/v1/notifications -H 'Authorization: Bearer {key}' \\
         -H 'Content-Type: application/json' \\
         -d '{{"type":"booking_created","title":"New booking","body":"Castle XL, Saturday 10:00"}}'
""",
        flush=True,
    )
    serve(create_app(settings), host=host, port=port, log_level=settings.log_level)
