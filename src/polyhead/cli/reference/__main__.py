"""`python -m polyhead.cli.reference [--check]`: write (or check) the reference pages."""
import sys

from . import main

sys.exit(main())
