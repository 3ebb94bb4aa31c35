"""``python -m qstash_sim`` does what the ``qstash-sim`` command does."""

from __future__ import annotations

import sys

from qstash_sim.cli import main

sys.exit(main())
