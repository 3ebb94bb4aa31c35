"""``python -m simulator`` does what the ``qstash-sim`` command does."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
