"""``python -m radioactive.cli``."""

from radioactive.cli import main

main()
