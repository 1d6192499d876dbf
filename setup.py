"""Only what setup.cfg cannot say: the top-level ``policies/`` directory (where admins edit
the bundled policies) ships as the package ``plugin.bundled_policies``. Everything else is in
setup.cfg."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["plugin", "plugin.*", "integrations", "integrations.*"])
    + ["plugin.bundled_policies"],
    package_dir={"plugin.bundled_policies": "policies"},
)
