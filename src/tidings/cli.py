"""``tidings`` command line. Every command that prints data takes ``--json``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError

from tidings.config import InsecureSettings, Settings
from tidings.logs import configure as configure_logs

app = typer.Typer(help="tidings: real-time in-app notifications.", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenants.", no_args_is_help=True)
key_app = typer.Typer(help="API keys.", no_args_is_help=True)
signing_key_app = typer.Typer(
    help="Tenant signing keys, for hosts that sign their own stream tokens.", no_args_is_help=True
)
app.add_typer(tenant_app, name="tenant")
app.add_typer(key_app, name="key")
app.add_typer(signing_key_app, name="signing-key")
user_app = typer.Typer(help="Users of a tenant (GDPR erasure).", no_args_is_help=True)
app.add_typer(user_app, name="user")

T = TypeVar("T")
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _out(data: Any, as_json: bool, human: str) -> None:
    if as_json:
        typer.echo(json.dumps(data, default=str))
    else:
        typer.echo(human)


def _settings(**overrides: Any) -> Settings:
    """The settings, or one line ``error: …`` and exit 2 if a secret must not be used (or a
    setting is invalid, e.g. ``TIDINGS_CORS_ORIGINS``)."""
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        first = error.errors()[0]
        where = "_".join(str(p) for p in first["loc"]).upper()
        prefix = f"TIDINGS_{where}: " if where else ""
        typer.echo(f"error: {prefix}{first['msg']}", err=True)
        raise typer.Exit(2) from None
    try:
        settings.check_secrets()
    except InsecureSettings as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    return settings


def _with_service(
    fn: Callable[[Any], Awaitable[T]], *, secrets: bool = False, migrate: bool | None = None
) -> T:
    """Run ``fn(service)`` against the configured store, without a server
    (:func:`tidings.wiring.open_service`, not live). With ``secrets`` the server secrets are
    resolved first, as the server does (generated if absent); ``migrate`` as there (``None``:
    on SQLite or with ``TIDINGS_AUTO_MIGRATE``), with the schema of the extensions
    ``tidings serve`` runs."""
    from tidings.errors import TidingsError
    from tidings.extensions import bundled_schema
    from tidings.wiring import open_service

    settings = _settings()

    async def run() -> T:
        schema = bundled_schema(settings)
        async with open_service(
            settings, schema, live=False, secrets=secrets, migrate=migrate
        ) as service:
            return await fn(service)

    try:
        return asyncio.run(run())
    except TidingsError as error:
        typer.echo(f"error: {error.code}: {error.detail}", err=True)
        raise typer.Exit(2) from error


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes sharing the port.")] = 1,
) -> None:
    """Run the server."""
    settings = _settings()
    configure_logs(settings.log_level, settings.log_format)
    if workers == 1:
        _serve_one(host, port, None)
        return
    _serve_many(host, port, workers)


def _serve_one(host: str, port: int, sock: socket.socket | None) -> None:
    from tidings.app import create_app
    from tidings.extensions import bundled
    from tidings.server import serve as run

    settings = Settings()
    try:
        app = create_app(settings, bundled(settings))
    except ValueError as error:  # a refused configuration: one line, no traceback
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    run(
        app,
        host=host,
        port=port,
        log_level=settings.log_level,
        sock=sock,
        backlog=settings.backlog,
    )


def _worker(host: str, port: int, sock: socket.socket) -> None:
    settings = Settings()
    configure_logs(settings.log_level, settings.log_format)
    _serve_one(host, port, sock)


def _serve_many(host: str, port: int, workers: int) -> None:
    """Bind once, then N processes accept on the same socket (like uvicorn --workers)."""
    import multiprocessing

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(Settings().backlog)
    sock.set_inheritable(True)
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_worker, args=(host, port, sock), daemon=False) for _ in range(workers)
    ]
    if Settings().is_sqlite:
        # Migrate (and generate unset secrets, logged once) before the workers race to do it.
        _with_service(lambda s: asyncio.sleep(0), secrets=True)
    for proc in procs:
        proc.start()
    typer.echo(f"tidings: {workers} workers on http://{host}:{port}", err=True)

    def stop(signum: int, _frame: Any) -> None:
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for proc in procs:
        proc.join()
    sock.close()


@app.command()
def migrate() -> None:
    """Apply database migrations up to the latest."""

    _with_service(lambda service: asyncio.sleep(0), migrate=True)
    typer.echo("migrated")


@app.command()
def config(as_json: JsonOpt = False) -> None:
    """Print the effective settings, secrets masked, and where each secret comes from."""
    masked = _settings().masked()
    sources = _secret_sources()
    for name, source in sources.items():
        masked[name] = "**********"
        masked[f"{name}_source"] = source
    lines = [
        f"{k} = {v} ({sources[k]})" if k in sources else f"{k} = {v}"
        for k, v in masked.items()
        if not k.endswith("_source")
    ]
    _out(masked, as_json, "\n".join(lines))


def _secret_sources() -> dict[str, str]:
    """``secret`` / ``operator_key`` → where the effective value comes from (never the value).
    Unset ones are read from the store, generated there if this is the first start."""
    from tidings import keyring
    from tidings.domain.notifications import utcnow
    from tidings.store import Store

    settings = _settings()

    async def run() -> dict[str, str]:
        store = Store(settings.database_url)
        try:
            if settings.is_sqlite or settings.auto_migrate:
                await store.migrate()
            found = await keyring.resolve(settings, store, utcnow())
        finally:
            await store.close()
        return {"secret": found.token.describe(), "operator_key": found.operator.describe()}

    try:
        return asyncio.run(run())
    except Exception as error:  # the store is unreachable: say so, still print the rest
        unreachable = f"in the store, which is not reachable ({error.__class__.__name__})"
        return {
            name: _describe_configured(settings.secret_source(name)) or unreachable
            for name in ("secret", "operator_key")
        }


def _describe_configured(source: str | None) -> str | None:
    return {"env": "environment", ".env": ".env file", "settings": "settings"}.get(source or "")


@app.command("operator-key")
def operator_key(as_json: JsonOpt = False) -> None:
    """Print the operator key (TIDINGS_OPERATOR_KEY, else the one generated in the store)."""

    async def run(service: Any) -> Any:
        return service.secrets.operator

    found = _with_service(run, secrets=True)
    _out({"operator_key": found.value, "source": found.describe()}, as_json, found.value)


@tenant_app.command("create")
def tenant_create(
    tenant_id: Annotated[str, typer.Argument(help="Slug, e.g. jump-joy.")],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a tenant."""
    tenant = _with_service(lambda s: s.create_tenant(tenant_id, name or tenant_id))
    _out(tenant.public(), as_json, f"created tenant {tenant.id} ({tenant.name})")


@tenant_app.command("list")
def tenant_list(as_json: JsonOpt = False) -> None:
    """List tenants."""
    tenants = _with_service(lambda s: s.list_tenants())
    _out([t.public() for t in tenants], as_json, "\n".join(f"{t.id}\t{t.name}" for t in tenants))


@key_app.command("create")
def key_create(
    tenant_id: str,
    name: Annotated[str, typer.Option(help="What the key is for.")] = "default",
    scope: Annotated[list[str] | None, typer.Option(help="publish, tokens, admin")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key. The key is printed once and never again."""
    created, secret = _with_service(
        lambda s: s.create_key(tenant_id, name, scope or ["publish", "tokens"])
    )
    _out({**created.public(), "key": secret}, as_json, secret)


@key_app.command("revoke")
def key_revoke(key_id: str, as_json: JsonOpt = False) -> None:
    """Revoke an API key at once."""
    revoked = _with_service(lambda s: s.revoke_key(key_id))
    _out(revoked.public(), as_json, f"revoked {revoked.id}")


@key_app.command("list")
def key_list(tenant_id: str, as_json: JsonOpt = False) -> None:
    """List a tenant's API keys (never their secrets), revoked ones included."""
    keys = _with_service(lambda s: s.list_keys(tenant_id))
    _out(
        [k.public() for k in keys],
        as_json,
        "\n".join(
            f"{k.id}\t{k.name}\t{','.join(k.scopes)}\t"
            + (f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active")
            for k in keys
        ),
    )


def _all_tables() -> None:
    """Register the extensions' tables on the shared metadata, so a deletion covers them."""
    import tidings.channels.tables
    import tidings.demo.tables  # noqa: F401


@tenant_app.command("delete")
def tenant_delete(
    tenant_id: str,
    yes: Annotated[
        bool, typer.Option("--yes", help="Really delete: this is irreversible.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete a tenant and everything of it, in one transaction: notifications, read state,
    API and signing keys, push subscriptions, preferences, digests, reminders, delivery log,
    demo rows. Streams open on running servers end when their tokens expire (the operator API,
    DELETE /v1/admin/tenants/TENANT, ends them at once on the instance it reaches)."""
    from tidings import erasure

    if not yes:
        typer.echo(
            f"error: this deletes tenant {tenant_id!r} and all of its data for good; "
            "run again with --yes",
            err=True,
        )
        raise typer.Exit(2)
    _all_tables()
    removal = _with_service(lambda s: erasure.delete_tenant(s, tenant_id))
    _out(removal.public(), as_json, removal.describe())


@user_app.command("erase")
def user_erase(tenant_id: str, user: str, as_json: JsonOpt = False) -> None:
    """Erase what tidings holds about a user (GDPR): read state, receipts, notifications
    addressed only to the user (from others' audiences the user is taken out), preferences,
    push subscriptions, digest state, reminders addressed only to the user. Broadcasts and
    role audiences stay. Prints what was removed."""
    from tidings import erasure
    from tidings.channels import erasure as channels_erasure

    removal = _with_service(
        lambda s: erasure.erase_user(s, tenant_id, user, also=[channels_erasure.erase_user])
    )
    _out(removal.public(), as_json, removal.describe())


@signing_key_app.command("create")
def signing_key_create(
    tenant_id: str,
    name: Annotated[str, typer.Option(help="What the key is for.")] = "default",
    as_json: JsonOpt = False,
) -> None:
    """Create a signing key: tokens with header kid=<kid>, signed HS256 with <secret>, are
    accepted for this tenant only. Printed once and never again."""
    created, secret = _with_service(lambda s: s.create_signing_key(tenant_id, name))
    _out(
        {**created.public(), "secret": secret},
        as_json,
        f"kid = {created.kid}\nsecret = {secret}",
    )


@signing_key_app.command("list")
def signing_key_list(tenant_id: str, as_json: JsonOpt = False) -> None:
    """List a tenant's signing keys (without their secrets)."""
    keys = _with_service(lambda s: s.list_signing_keys(tenant_id))
    _out(
        [k.public() for k in keys],
        as_json,
        "\n".join(
            f"{k.kid}\t{k.name}\t" + (f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "")
            for k in keys
        ),
    )


@signing_key_app.command("revoke")
def signing_key_revoke(kid: str, as_json: JsonOpt = False) -> None:
    """Revoke a signing key (other running instances: within TIDINGS_SIGNING_KEY_CACHE s)."""
    revoked = _with_service(lambda s: s.revoke_signing_key(kid))
    _out(revoked.public(), as_json, f"revoked {revoked.kid}")


@app.command()
def token(
    tenant_id: str,
    user: str,
    role: Annotated[list[str] | None, typer.Option(help="Role (repeatable).")] = None,
    ttl: Annotated[int | None, typer.Option(help="Lifetime in seconds.")] = None,
    email: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOpt = False,
) -> None:
    """Mint a stream token for a user of a tenant."""

    async def run(service: Any) -> tuple[str, Any]:
        from tidings.store import tenants as tq

        async with service.store.read() as conn:
            await tq.get_tenant(conn, tenant_id)
        result: tuple[str, Any] = service.mint_token(
            tenant_id, user, role or [], ttl=ttl, email=email
        )
        return result

    jwt_token, expires = _with_service(run, secrets=True)
    _out(
        {"token": jwt_token, "expires_at": expires.isoformat(), "tenant": tenant_id, "user": user},
        as_json,
        jwt_token,
    )


@app.command()
def publish(
    title: str,
    type_: Annotated[str, typer.Option("--type")] = "system",
    body: Annotated[str, typer.Option()] = "",
    link: Annotated[str | None, typer.Option()] = None,
    user: Annotated[list[str] | None, typer.Option(help="Only these users.")] = None,
    role: Annotated[list[str] | None, typer.Option(help="Only these roles.")] = None,
    url: Annotated[str, typer.Option(envvar="TIDINGS_URL")] = "http://127.0.0.1:8000",
    key: Annotated[str, typer.Option(envvar="TIDINGS_API_KEY", help="API key.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Publish a notification through a running server (retries, idempotent)."""
    from tidings.client import ApiError, Notification, Publisher

    if not key:
        typer.echo("error: --key or TIDINGS_API_KEY is required", err=True)
        raise typer.Exit(2)
    audience: dict[str, list[str]] | None = None
    if user or role:
        audience = {"users": user or [], "roles": role or []}

    async def run() -> Notification:
        async with Publisher(url, key) as pub:
            return await pub.publish(
                type=type_, title=title, body=body, link=link, audience=audience
            )

    try:
        result = asyncio.run(run())
    except ApiError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    _out(result, as_json, f"published #{result['id']} {result['type']}: {result['title']}")


@app.command()
def tail(
    url: Annotated[str, typer.Option(envvar="TIDINGS_URL")] = "http://127.0.0.1:8000",
    token_: Annotated[str, typer.Option("--token", envvar="TIDINGS_TOKEN")] = "",
    last_event_id: Annotated[int | None, typer.Option()] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print live notifications, resuming on reconnect. Ctrl-C to stop."""
    from tidings.client import subscribe

    async def run() -> None:
        async for event in subscribe(url, token=token_ or None, last_event_id=last_event_id):
            if as_json:
                typer.echo(json.dumps({"event": event.event, "id": event.id, "data": event.data}))
            elif event.event == "notification":
                n = event.data
                typer.echo(
                    f"#{n['id']} {n['created_at']} {n['type']}: {n['title']}"
                    + (f" — {n['body']}" if n["body"] else "")
                )
            elif event.event in ("ready", "reset"):
                typer.echo(
                    f"[{event.event}] unread={event.data['unread']['count']} "
                    f"latest={event.data['latest_seq']}",
                    err=True,
                )
            else:
                typer.echo(f"[{event.event}] {json.dumps(event.data)}", err=True)
            sys.stdout.flush()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


@app.command()
def demo(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Run the Bounce House Rentals demo on the embedded default."""
    from tidings.app import create_app
    from tidings.demo.run import announce
    from tidings.extensions import bundled
    from tidings.server import serve as run

    settings = _settings(demo=True)  # exit 2 for a published secret, before anything starts
    announce(settings, host, port)  # exit 2 in production; migrate, seed, print the banner
    run(
        create_app(settings, bundled(settings)),
        host=host,
        port=port,
        log_level=settings.log_level,
        backlog=settings.backlog,
    )


# -- the API contract (docs/openapi.json) -----------------------------------------------------


@app.command()
def openapi(
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
) -> None:
    """Print the OpenAPI document the server serves at /openapi.json (`make openapi` writes
    docs/openapi.json). Reads no store and opens no port."""
    from tidings.app import create_app
    from tidings.extensions import bundled

    settings = _settings(docs=True, demo=False)
    app_ = create_app(settings, bundled(settings))  # what `tidings serve` serves
    text = json.dumps(app_.openapi(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        with open(output, "w", encoding="utf-8") as file:
            file.write(text)


# -- the outbox (docs/outbox.md) -----------------------------------------------------------------
outbox_app = typer.Typer(
    help="The outbox a host inserts into (docs/outbox.md).", no_args_is_help=True
)
app.add_typer(outbox_app, name="outbox")


@outbox_app.command("sql")
def outbox_sql() -> None:
    """Print the DDL of tidings_outbox, tidings_outbox_dead and the NOTIFY trigger (for psql)."""
    from tidings.outbox.schema import SQL

    typer.echo(SQL, nl=False)


# -- webhooks (docs/webhooks.md) -----------------------------------------------------------------
webhook_app = typer.Typer(
    help="A tenant's webhook endpoints (docs/webhooks.md).", no_args_is_help=True
)
app.add_typer(webhook_app, name="webhook")


def _webhooks(fn: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``fn(Webhooks)`` on the configured store (a running server's worker delivers what it
    queues within ``TIDINGS_WEBHOOK_POLL_INTERVAL``)."""

    async def run(service: Any) -> T:
        from tidings.webhooks.manage import Webhooks

        return await fn(Webhooks(service.store, service.settings))

    return _with_service(run)


def _endpoint_line(e: dict[str, Any]) -> str:
    state = "enabled" if e["enabled"] else f"disabled ({e['disabled_reason']})"
    return f"{e['id']}  {state}  {e['url']}  {','.join(e['event_types'])}"


@webhook_app.command("add")
def webhook_add(
    tenant_id: str,
    url: str,
    event: Annotated[
        list[str], typer.Option("--event", "-e", help="An event type (repeat for several).")
    ],
    description: Annotated[str | None, typer.Option(help="A note for people.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add an endpoint; prints its secret (whsec_…) once."""
    created, secret = _webhooks(
        lambda w: w.add(tenant_id, url=url, event_types=event, description=description)
    )
    out = {**created.public(), "secret": secret}
    _out(out, as_json, f"{_endpoint_line(out)}\nsecret (shown once): {secret}")


@webhook_app.command("list")
def webhook_list(tenant_id: str, as_json: JsonOpt = False) -> None:
    """The tenant's endpoints."""
    found = [e.public() for e in _webhooks(lambda w: w.endpoints(tenant_id))]
    _out(found, as_json, "\n".join(_endpoint_line(e) for e in found) or "(no endpoints)")


@webhook_app.command("remove")
def webhook_remove(tenant_id: str, endpoint_id: str) -> None:
    """Remove an endpoint and its queued deliveries."""
    _webhooks(lambda w: w.remove(tenant_id, endpoint_id))
    typer.echo(f"removed {endpoint_id}")


@webhook_app.command("enable")
def webhook_enable(tenant_id: str, endpoint_id: str, as_json: JsonOpt = False) -> None:
    """Enable an endpoint again (its failure streak restarts; pending deliveries resume)."""
    found = _webhooks(lambda w: w.change(tenant_id, endpoint_id, {"enabled": True})).public()
    _out(found, as_json, _endpoint_line(found))


@webhook_app.command("disable")
def webhook_disable(tenant_id: str, endpoint_id: str, as_json: JsonOpt = False) -> None:
    """Stop delivering to an endpoint (its deliveries wait)."""
    found = _webhooks(lambda w: w.change(tenant_id, endpoint_id, {"enabled": False})).public()
    _out(found, as_json, _endpoint_line(found))


@webhook_app.command("log")
def webhook_log(
    tenant_id: str,
    endpoint_id: Annotated[str | None, typer.Option("--endpoint")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The delivery log, newest first: attempts, give-ups, automatic disabling."""
    entries = _webhooks(lambda w: w.log(tenant_id, endpoint_id=endpoint_id, limit=limit))
    lines = [
        f"{e['at']}  {e['endpoint_id']}  {e['kind']}  {e['event_id'] or '-'}  "
        f"{e['status'] or '-'}  {e['error'] or 'ok' if e['kind'] == 'attempt' else ''}"
        for e in entries
    ]
    _out(entries, as_json, "\n".join(lines) or "(empty)")


@webhook_app.command("replay")
def webhook_replay(
    tenant_id: str,
    event_id: str,
    endpoint_id: Annotated[str | None, typer.Option("--endpoint")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Send a past event again (same webhook-id)."""
    queued = _webhooks(lambda w: w.replay(tenant_id, event_id, endpoint_id))
    _out(
        {"event_id": event_id, "queued": queued},
        as_json,
        f"queued {event_id} to {', '.join(queued) or 'no endpoint'}",
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
