"""User accounts."""

from __future__ import annotations

import sys

import typer

from cli.common import database, user_errors
from db.enums import Role
from services.core import auth


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@user_errors
def users_add(
    name: str = typer.Argument(...),
    role: str = typer.Option(..., "--role", help=f"One of: {', '.join(tuple(Role))}."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
) -> None:
    """Add a user; the password is prompted for (never an argument, so never in shell history)."""
    db = database()
    info = auth.add_user(db, name, role, _read_password(password_stdin))
    typer.echo(f"added {info.name} ({info.role})")


@user_errors
def users_passwd(
    name: str = typer.Argument(...),
    password_stdin: bool = typer.Option(False, "--password-stdin"),
) -> None:
    """Set a user's password (and unlock the account)."""
    auth.set_password(database(), name, _read_password(password_stdin))
    typer.echo(f"password of {name} changed")


@user_errors
def users_list() -> None:
    """List users and roles."""
    for u in auth.list_users(database()):
        typer.echo(f"{u.name:<20} {u.role:<10} {'active' if u.is_active else 'inactive'}")
