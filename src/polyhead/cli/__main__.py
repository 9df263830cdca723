"""`python -m polyhead.cli ...` runs the command line (used by `accelerate launch -m polyhead.cli`)."""
import sys

from .main import main

sys.exit(main())
