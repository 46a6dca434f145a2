"""`python -m tfdata_checkpoint_cli`: the `tfdata-checkpoint` command."""

import sys

from tfdata_checkpoint_cli import main

sys.exit(main())
