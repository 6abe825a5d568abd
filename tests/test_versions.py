"""The three packages report the distribution's version."""

import re
from pathlib import Path

import agents
import analysis
import dm_envs


def test_packages_share_the_distribution_version():
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    version = re.search(r'^version = "([^"]+)"', pyproject, re.M).group(1)
    assert dm_envs.__version__ == agents.__version__ == analysis.__version__ == version


def test_lazy_sb3_module_attribute():
    import subprocess
    import sys

    code = (
        "import sys, dm_envs\n"
        "assert 'stable_baselines3' not in sys.modules and 'torch' not in sys.modules\n"
        "assert 'sb3' in dir(dm_envs)\n"
        "venv = dm_envs.sb3.make_sb3_vec_env(2, level=1, seed=0)\n"
        "assert venv.reset().shape == (2, 3) and 'stable_baselines3' in sys.modules\n"
        "try:\n"
        "    dm_envs.nope\n"
        "except AttributeError as err:\n"
        "    assert 'nope' in str(err)\n"
        "else:\n"
        "    raise AssertionError('no AttributeError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)  # fails on any assertion in the code
