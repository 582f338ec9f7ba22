"""`python -m shepherd_cli`: the `shepherd` command."""

from shepherd_cli.main import main

main()
