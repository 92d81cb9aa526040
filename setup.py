"""Packages of the wheel: everything under src/, plus the YAML configs at the repository
root shipped as ``mu2/configs`` (so ``--config paper`` and ``mu2 config list`` work after a
plain ``pip install``; the files are listed under package-data in pyproject.toml).
pyproject.toml's package discovery cannot map a folder outside src/.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages("src"), "mu2.configs"],
    package_dir={"": "src", "mu2.configs": "configs"},
)
