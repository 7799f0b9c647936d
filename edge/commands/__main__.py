"""``python -m edge.commands``: sign and send a command to a post."""

import sys

from edge.commands import main

sys.exit(main())
