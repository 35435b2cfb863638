"""``python -m sprites download [--to DIR]``: the course's sprites files from the Hugging Face Hub
(:mod:`sprites.download`)."""

import sys

from sprites.download import main

sys.exit(main())
