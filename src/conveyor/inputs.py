"""What a trigger from outside may carry: branch and tag names, and variable names. Pure.

Owns the one check of a ref and of a trigger variable's name, used alike by the HTTP API
(`POST /api/v1/runs`), the webhooks (the pushed ref), the server's schedules and the CLI
(`--ref`, `--var`):

- A ref is a branch or tag name by git's `check-ref-format --branch` rules: no revision
  syntax (`main^{tree}`, `main:.conveyor.yml`, `main~1`, `@{…}`), no `..`, no NUL or other
  control character, no space or `~ ^ : ? * [ \\`, no empty, `.`-leading or `.lock`-ending
  component, no leading `-` or `/`, no trailing `/` or `.`, not `@` or `HEAD`, and at most
  255 bytes of UTF-8. Git would read anything else as a revision expression, cut it (at a
  NUL), or refuse it later with a less useful message.
- A trigger variable may not be one that changes how a shell, the dynamic loader or an
  interpreter starts (`REFUSED_VARIABLES`, `REFUSED_VARIABLE_PREFIXES`): such a value runs
  code in every job before its first command (`BASH_ENV=/tmp/x` makes every bash source
  that file; `LD_PRELOAD` loads a library into every process). A pipeline file may still
  set them: its author writes the jobs' commands anyway.

Must not: do I/O, or echo a refused value back (a ref may carry control characters; the
message says what is wrong, not the text).
"""

from __future__ import annotations

from collections.abc import Iterable

from conveyor.errors import InvalidRef, RefusedVariable

__all__ = [
    "MAX_REF_BYTES",
    "REFUSED_VARIABLES",
    "REFUSED_VARIABLE_PREFIXES",
    "check_ref",
    "check_variable_names",
    "ref_problem",
    "variable_problem",
]

MAX_REF_BYTES = 255

# Read by a shell, the loader or an interpreter when it starts, before the job's script.
REFUSED_VARIABLES = frozenset(
    {
        "BASH_ENV",  # bash sources this file at start (non-interactive shells included)
        "ENV",  # sh/dash/ksh (and bash in POSIX mode) source this file
        "SHELLOPTS",  # bash options turned on at start (xtrace, …)
        "BASHOPTS",
        "PS4",  # expanded, command substitutions included, by `set -x`
        "IFS",  # how every unquoted expansion of the script splits
        "PROMPT_COMMAND",
        "PATH",  # which program every command name runs
        "GCONV_PATH",  # glibc loads modules from here (iconv)
        "HOSTALIASES",
        "LOCPATH",
        "NLSPATH",
        "PYTHONSTARTUP",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONINSPECT",
        "PERL5OPT",
        "PERL5LIB",
        "PERLLIB",
        "RUBYOPT",
        "RUBYLIB",
        "NODE_OPTIONS",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
    }
)
# LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT…; exported bash functions; macOS's loader.
REFUSED_VARIABLE_PREFIXES = ("LD_", "BASH_FUNC_", "DYLD_")

_FORBIDDEN_CHARACTERS = frozenset(" ~^:?*[\\")


def ref_problem(ref: str) -> str | None:
    """Why `ref` is not a valid branch or tag name (module docstring), or None."""
    if not ref:
        return "is empty"
    if len(ref.encode("utf-8", "surrogatepass")) > MAX_REF_BYTES:
        return f"is longer than {MAX_REF_BYTES} bytes"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in ref):
        return "contains a control character (NUL, newline, …)"
    bad = sorted({ch for ch in ref if ch in _FORBIDDEN_CHARACTERS})
    if bad:
        shown = ", ".join("space" if ch == " " else repr(ch) for ch in bad)
        return f"contains {shown} (revision syntax, not a branch or tag name)"
    return _shape_problem(ref)


def _shape_problem(ref: str) -> str | None:
    if ".." in ref:
        return "contains '..'"
    if "@{" in ref:
        return "contains '@{' (revision syntax, not a branch or tag name)"
    if ref in ("@", "HEAD"):
        return f"is {ref!r}, not a branch or tag name"
    if ref.startswith("-"):
        return "starts with '-'"
    if ref.startswith("/") or ref.endswith("/") or "//" in ref:
        return "has an empty path component (a leading, trailing or doubled '/')"
    if ref.endswith("."):
        return "ends with '.'"
    for component in ref.split("/"):
        if component.startswith("."):
            return "has a path component starting with '.'"
        if component.endswith(".lock"):
            return "has a path component ending with '.lock'"
    return None


def check_ref(ref: str, *, where: str) -> str:
    """`ref` when valid; else InvalidRef `where: the ref …`."""
    problem = ref_problem(ref)
    if problem is not None:
        raise InvalidRef(
            f"{where}: the ref {problem}; give a branch or tag name as git accepts it "
            "(git check-ref-format --branch)"
        )
    return ref


def variable_problem(name: str) -> str | None:
    """Why a trigger may not set variable `name`, or None."""
    if name in REFUSED_VARIABLES or name.startswith(REFUSED_VARIABLE_PREFIXES):
        return (
            f"variable {name} changes how a job's shell, loader or interpreter starts and "
            "cannot be set by a trigger (set it in the pipeline file if the jobs need it)"
        )
    return None


def check_variable_names(names: Iterable[str], *, where: str) -> None:
    """RefusedVariable naming every refused name in `names`, sorted; nothing when all pass."""
    refused = sorted(name for name in set(names) if variable_problem(name) is not None)
    if len(refused) == 1:
        raise RefusedVariable(f"{where}: {variable_problem(refused[0])}")
    if refused:
        raise RefusedVariable(
            f"{where}: variables {', '.join(refused)} change how a job's shell, loader or "
            "interpreter starts and cannot be set by a trigger (set them in the pipeline "
            "file if the jobs need them)"
        )
