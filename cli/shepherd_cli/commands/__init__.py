"""The `shepherd` commands, one module per idea; `shepherd_cli.main` puts them in one group."""
