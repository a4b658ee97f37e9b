"""``python -m outpost`` is the ``outpost`` command."""

from outpost.cli import main

main()
