"""conveyor: a self-hosted CI/CD engine and pipeline monitor.

Importing the package must stay cheap (the CLI starts with it): nothing is imported here.
"""

__version__ = "0.1.0"
