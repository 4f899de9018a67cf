"""Packaging: the metadata is in pyproject.toml; this only maps the top-level ``migrations/``.

The alembic history lives at the repository's top level (the layout the design names) and is
shipped inside the package as ``galdb.migrations``, so an installed galdb migrates without the
repository.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["galdb", "galdb.*"])
    + ["galdb.migrations", "galdb.migrations.versions"],
    package_dir={"galdb.migrations": "migrations"},
)
