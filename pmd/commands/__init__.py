"""One module per `pmd` subcommand; each exposes `register(subparsers)`."""
