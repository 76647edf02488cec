"""``python -m dicomslide``: the command line."""

import sys

from dicomslide.cli import main

sys.exit(main())
