"""The commands adapters may ask of the engine, by name: one explicit table (a new command is a handler and a
line here)."""

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING

from adapters import Command
from gateway.engine import compliance, lifecycle

if TYPE_CHECKING:  # handlers are called with the engine: no import cycle at run time
    from gateway.engine.orders import Engine

CommandHandler = Callable[["Engine", sqlite3.Connection, str, Command, int], list[str]]

COMMANDS: dict[str, CommandHandler] = {
    "erase_customer": compliance.erase_customer,
    "erase_source": compliance.erase_source,
    "data_request": compliance.data_request,
    "app_uninstalled": compliance.app_uninstalled,
    "catalog_update": lifecycle.catalog_command,
    "checkout": lifecycle.checkout_command,
}
