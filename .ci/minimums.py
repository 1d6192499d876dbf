"""Print the declared minimum of every dependency (setup.cfg ``>=X`` -> ``==X``), one a line.

``python3 .ci/minimums.py [EXTRA ...]``: install_requires plus the named extras. CI installs
these into a fresh venv and runs the engine's tests, so the declared ranges stay true.
"""

import configparser
import re
import sys
from pathlib import Path

cfg = configparser.ConfigParser()
cfg.read(Path(__file__).resolve().parent.parent / "setup.cfg")
lines = cfg["options"]["install_requires"].splitlines()
for extra in sys.argv[1:]:
    lines += cfg["options.extras_require"][extra].splitlines()
for line in lines:
    line = line.split(";")[0].strip()
    if not line:
        continue
    match = re.fullmatch(r"([A-Za-z0-9_.\-]+(?:\[[^\]]+\])?)\s*>=\s*([^,\s]+).*", line)
    if not match:
        sys.exit(f"{line!r}: no minimum declared (write NAME>=VERSION)")
    print(f"{match.group(1)}=={match.group(2)}")
