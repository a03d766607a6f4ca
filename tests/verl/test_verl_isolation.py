"""veRL and Ray stay out of the core: runs in both environments (no veRL needed)."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys
import deepmmsearch, deepmmsearch.agent.loop, deepmmsearch.train, deepmmsearch.train.verl
import deepmmsearch.train.verl.session, deepmmsearch.train.verl.reward
import deepmmsearch.train.verl.template
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('verl', 'ray', 'torch', 'transformers'))
print(','.join(heavy))
"""


def test_core_and_verl_free_adapters_import_no_verl_ray_or_torch():
    res = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=False,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ""
