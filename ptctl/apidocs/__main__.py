"""``python -m ptctl.apidocs OUT_DIR``: vendor the /docs page's files into OUT_DIR."""

import sys
from pathlib import Path

from ptctl.apidocs import vendor

vendor(Path(sys.argv[1]))
