"""`silkroute serve` and the account and token admin verbs."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from silkroute.api.tuning import DEFAULT_GROUP, DEFAULT_THREADS, GROUP_ENV, THREADS_ENV
from silkroute.cli import DbOpt, JsonOpt, engine_for, out, print_json, uow_for, user_errors

account_app = typer.Typer(help="Accounts that act for a buyer, seller or the operator.",
                          no_args_is_help=True)
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
token_app = typer.Typer(help="API tokens: issue (shown once) and revoke.", no_args_is_help=True)


@user_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1, max=64)] = 1,
    threads: Annotated[int, typer.Option(help="Endpoint threads per worker: requests each "
                                         "worker serves at once (more wait).", min=1,
                                         max=256)] = DEFAULT_THREADS,
    buy_now_group: Annotated[int, typer.Option(help="Concurrent buy-nows a worker runs "
                                               "together at most (group commit; "
                                               "PostgreSQL); 0 runs each alone.", min=0,
                                               max=1024)] = DEFAULT_GROUP,
    db: DbOpt = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    demo: Annotated[bool, typer.Option("--demo", help="Fill a fresh database with the demo "
                                       "market first and print demo credentials.")] = False,
    demo_orders: Annotated[int, typer.Option(help="Orders the demo places.", min=0,
                                             max=100_000)] = 1000,
) -> None:
    """Serve the HTTP API under /api/v1 (migrating the database first)."""
    import uvicorn

    from silkroute.domain.errors import ValidationError
    from silkroute.store.engine import ENV_URL, database_url

    if log_level not in LOG_LEVELS:
        raise ValidationError(f"log_level: {log_level!r} is not one of {', '.join(LOG_LEVELS)}",
                              field="log_level")
    from silkroute.store.migrate import upgrade

    url = database_url(db)
    if demo:
        _fill_demo(url, demo_orders, host, port)
    engine = engine_for(url)
    rev = upgrade(engine)
    engine.dispose()
    os.environ[ENV_URL] = url  # the workers build their engine from it
    os.environ[THREADS_ENV] = str(threads)
    os.environ[GROUP_ENV] = str(buy_now_group)
    out.print(f"database at revision {rev}; serving on http://{host}:{port}/api/v1/docs",
              soft_wrap=True)
    uvicorn.run("silkroute.api.app:app_from_env", factory=True, host=host, port=port,
                workers=workers, log_level=log_level, access_log=False)


def _fill_demo(url: str, orders: int, host: str, port: int) -> None:
    """The demo market in a fresh database, and tokens to look at it with."""
    from silkroute.services.accounts import create_demo_accounts
    from silkroute.sim.demo import run_demo
    from silkroute.store.uow import UnitOfWork

    summary = run_demo(url, orders=orders, console=out)
    out.print(f"demo market: {summary['sellers']} sellers, {summary['skus']} SKUs, "
              f"{summary['buyers']} buyers, {summary['orders_placed']} orders")
    engine = engine_for(url)
    try:
        accounts = create_demo_accounts(lambda: UnitOfWork(engine))
    finally:
        engine.dispose()
    out.print(f"API: http://{host}:{port}/api/v1  docs: http://{host}:{port}/api/v1/docs",
              soft_wrap=True)
    for acc in accounts:
        assert acc.token is not None
        tenant = (f" (seller {acc.seller_id})" if acc.seller_id else "") + (
            f" (buyer {acc.buyer_id})" if acc.buyer_id else "")
        out.print(f"demo {acc.role}{tenant} token: {acc.token.token}", markup=False,
                  soft_wrap=True)


@account_app.command("create")
@user_errors
def account_create(
    role: Annotated[str, typer.Option(help="buyer, seller or operator.")],
    name: Annotated[str, typer.Option(help="Name of the account (and of a new buyer/seller).")]
    = "operator",
    buyer: Annotated[int | None, typer.Option(help="Existing buyer id to act for.")] = None,
    seller: Annotated[int | None, typer.Option(help="Existing seller id to act for.")] = None,
    currency: Annotated[str, typer.Option(help="Currency of a new seller's shop.")] = "KRW",
    token: Annotated[bool, typer.Option("--token/--no-token",
                                        help="Also issue a first token.")] = True,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an account; a buyer or seller without --buyer/--seller gets a new one."""
    from silkroute.services.accounts import create_account

    res = create_account(uow_for(db), role, name, buyer_id=buyer, seller_id=seller,
                         currency=currency, with_token=token)
    data = {"account_id": res.account_id, "role": res.role, "name": res.name,
            "buyer_id": res.buyer_id, "seller_id": res.seller_id, "shop_id": res.shop_id,
            "token_id": res.token.token_id if res.token else None,
            "token": res.token.token if res.token else None}
    if as_json:
        print_json(data)
        return
    tenant = (f", buyer {res.buyer_id}" if res.buyer_id else "") + (
        f", seller {res.seller_id}" if res.seller_id else "")
    out.print(f"account {res.account_id} ({res.role}{tenant})")
    if res.token:
        out.print(f"token {res.token.token_id} (shown once): {res.token.token}", markup=False,
                  soft_wrap=True)


@token_app.command("issue")
@user_errors
def token_issue(
    account: Annotated[int, typer.Option(help="Account id.")],
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue a new token for an account; it is printed once and stored only as a hash."""
    from silkroute.services.accounts import issue_token

    res = issue_token(uow_for(db), account, label)
    if as_json:
        print_json(res.__dict__)
    else:
        out.print(f"token {res.token_id} for account {res.account_id} (shown once): "
                  f"{res.token}", markup=False, soft_wrap=True)


@token_app.command("revoke")
@user_errors
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="Token id (as printed when issued).")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a token: requests with it are refused from now on."""
    from silkroute.services.accounts import revoke_token

    changed = revoke_token(uow_for(db), token_id)
    if as_json:
        print_json({"token_id": token_id, "revoked": True, "changed": changed})
    else:
        out.print(f"token {token_id} revoked" + ("" if changed else " (it already was)"))


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(account_app, name="account")
    app.add_typer(token_app, name="token")


def _registered(app: typer.Typer) -> bool:
    return any(c.name == "serve" for c in app.registered_commands)


if __name__ == "__main__":  # `python -m silkroute.commands.api serve ...`
    from silkroute.cli import app as cli_app
    from silkroute.cli import bench_app

    if not _registered(cli_app):
        register(cli_app, bench_app)
    cli_app()
