"""``python -m stripe_standin``: the stand-in in the foreground."""

import sys

from stripe_standin.server import main

sys.exit(main())
