"""GitLab's `workflow:auto_cancel` -> Pipeline.auto_cancel: the `on_new_commit` mode
superseded runs follow on the server (runs.supersede). Pure: the marked document in,
a value and findings out."""

from __future__ import annotations

from conveyor.config.gitlab.findings import Findings
from conveyor.config.yamlload import MarkedDict, type_name

__all__ = ["workflow_auto_cancel"]


def workflow_auto_cancel(raw: object, findings: Findings) -> str | None:
    """`workflow:auto_cancel:on_new_commit` (conservative, interruptible or none), applied
    to superseded runs (runs.supersede); `on_job_failure` is warned about, not applied."""
    if not isinstance(raw, MarkedDict) or "auto_cancel" not in raw:
        return None
    section = raw["auto_cancel"]
    if not isinstance(section, MarkedDict):
        findings.error(
            raw.value_mark("auto_cancel"),
            f"workflow:auto_cancel must be a mapping, got {type_name(section)}",
        )
        return None
    for key in section:
        if key == "on_job_failure":
            findings.warn_once(
                "workflow:auto_cancel:on_job_failure",
                section.key_mark(key),
                "workflow:auto_cancel:on_job_failure is not applied by conveyor",
            )
        elif key != "on_new_commit":
            findings.error(
                section.key_mark(key),
                f"workflow:auto_cancel: unknown keyword {key} (use on_new_commit or "
                "on_job_failure)",
            )
    value = section.get("on_new_commit")
    if value is None:
        return None
    if value not in ("conservative", "interruptible", "none"):
        findings.error(
            section.value_mark("on_new_commit"),
            f"workflow:auto_cancel:on_new_commit must be conservative, interruptible or "
            f"none, got {value!r}",
        )
        return None
    return str(value)
