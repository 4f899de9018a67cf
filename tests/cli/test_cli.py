"""The command line: every command documents itself with an example; commands run end to end."""

import subprocess
import sys

import pytest
import typer.main

from galdb.cli import app, main


def _commands():
    group = typer.main.get_command(app)
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            for sub_name, sub in cmd.commands.items():
                yield f"{name} {sub_name}", sub
        else:
            yield name, cmd


@pytest.mark.parametrize(("name", "command"), list(_commands()))
def test_every_command_has_help_with_an_example(name, command):
    assert command.help and len(command.help) > 30, name
    assert "Example" in command.help or "example" in command.help, name


def test_console_script_help():
    out = subprocess.run(
        [sys.executable, "-m", "galdb", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name in ("ingest", "cone", "sql", "simulate", "demo", "db"):
        assert name in out


def test_db_commands(settings, capsys):
    assert main(["db", "init"]) == 0
    assert main(["db", "status"]) == 0
    out = capsys.readouterr().out
    assert "pgvector 0.8" in out and "up to date" in out
    assert main(["db", "url"]) == 0
    assert "postgresql://" in capsys.readouterr().out


def test_sql_refusal_exit_status(settings, capsys):
    assert main(["sql", "DROP TABLE galdb.galaxies"]) == 4
    assert "refused" in capsys.readouterr().err


def test_sql_and_cone_write_files(settings, tmp_path, capsys):
    out = tmp_path / "releases.vot"
    assert main(["sql", "SELECT name FROM galdb.releases", "--out", str(out)]) == 0
    assert out.exists()
    assert main(["cone", "10", "-5", "2arcmin", "--out", str(tmp_path / "c.csv")]) == 0
    assert (tmp_path / "c.csv").read_text().startswith("galaxy_id,sep_arcsec")


def test_cone_needs_a_unit(settings, capsys):
    assert main(["cone", "10", "-5", "2"]) == 1
    assert "unit" in capsys.readouterr().err
