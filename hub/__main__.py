"""``python -m hub`` is the ``teddyhub`` command."""

from hub.cli import main

main()
