"""`flowdeck server ...`."""
import os
import sys


def start(args) -> int:
    from flowdeck.server.app import configure_logging, serve_forever
    from flowdeck.server.settings import Settings

    overrides = dict(host=args.host, port=args.port, database_url=args.database_url, log_level=args.log_level)
    if args.no_scheduler:
        overrides["scheduler_enabled"] = False
    overrides.update(tls_cert=args.tls_cert, tls_key=args.tls_key, tls_client_ca=args.tls_client_ca, auth=args.auth)
    overrides.update(ui_port=args.ui_port, ui=False if args.no_ui else None)
    overrides.update(metrics=False if args.no_metrics else None, metrics_public=args.metrics_public,
                     log_format=args.log_format)
    settings = Settings.from_env(**overrides)
    if settings.port == 0 and args.ui_port is None and "FLOWDECK_UI_PORT" not in os.environ:
        settings.ui_port = 0  # several servers side by side (tests): a free port each
    try:
        configure_logging(settings.log_level, settings.log_format)
    except ValueError as e:  # FLOWDECK_LOG_FORMAT (the flag's choices are checked by argparse)
        print(f"Error: {e}", file=sys.stderr)
        return 1
    from flowdeck.server.api.tls import server_credentials

    server_credentials(settings)  # a bad TLS file is one line and exit 1, before anything starts
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        import logging

        if not settings.tls_cert:
            logging.getLogger("flowdeck.server").warning(
                "binding %s without TLS: anyone who can reach this address can use the API", settings.host
            )
        if not settings.auth:
            logging.getLogger("flowdeck.server").warning(
                "binding %s without --auth: every caller may do everything (no API keys)", settings.host
            )
    serve_forever(settings)
    return 0


def create_admin_key(args) -> int:
    """Make an admin key straight in the server's database (the first key, or
    a way back in). The key goes to stdout alone, once; nothing keeps it."""
    from flowdeck.server import api_keys
    from flowdeck.server.db import Database
    from flowdeck.server.settings import Settings

    settings = Settings.from_env(database_url=args.database_url)
    db = Database(settings.resolved_database_url(), threads=1)
    try:
        db.migrate()
        with db.write() as s:
            row, key = api_keys.create(s, args.name, "admin", created_by=api_keys.CREATED_BY_SERVER)
            key_id = row.id
    finally:
        db.close()
    print(f"Created admin API key {args.name!r} (id {key_id}). It is shown only this once; "
          "give it to clients as FLOWDECK_API_KEY:", file=sys.stderr)
    print(key, flush=True)
    return 0
