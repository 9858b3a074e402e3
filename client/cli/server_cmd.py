"""`flowdeck server ...`."""


def start(args) -> int:
    from flowdeck.server.app import configure_logging, serve_forever
    from flowdeck.server.settings import Settings

    overrides = dict(host=args.host, port=args.port, database_url=args.database_url, log_level=args.log_level)
    if args.no_scheduler:
        overrides["scheduler_enabled"] = False
    settings = Settings.from_env(**overrides)
    configure_logging(settings.log_level)
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        import logging

        logging.getLogger("flowdeck.server").warning(
            "binding %s without TLS: anyone who can reach this address can use the API", settings.host
        )
    serve_forever(settings)
    return 0
