"""Entry point of ``python -m lab``."""

import sys

from lab import logs
from lab.cli.main import main

logs.configure(default_level="WARNING")
sys.exit(main())
