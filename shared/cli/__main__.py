"""`python -m shared.cli …` is `broker …` (tests and the image call it this way)."""

import sys

from shared.cli import main

sys.exit(main())
