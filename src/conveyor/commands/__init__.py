"""The CLI's commands, one module each, imported by `conveyor.cli` only when invoked.

A command parses nothing itself (cli.py does), calls the engine or the store, renders and
returns; it holds no logic the server would need too.
"""
