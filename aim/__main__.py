"""``python -m aim`` is the ``aim`` command."""
from aim.cli.main import main

main()
