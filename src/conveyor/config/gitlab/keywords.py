"""The GitLab CI/CD keyword tables: which keys exist where, which conveyor acts on, and
which it accepts but cannot honour on a local host.

Owns: the names only (for validation and did-you-mean). Must not: parse values.
Source: GitLab's "CI/CD YAML syntax reference" (docs.gitlab.com/ci/yaml/).
"""

from __future__ import annotations

__all__ = [
    "ACCEPTED_ARTIFACT_KEYS",
    "ARTIFACT_KEYS",
    "DEFAULT_KEYS",
    "DEFAULT_STAGES",
    "INCLUDE_KINDS",
    "JOB_KEYS",
    "NEED_KEYS",
    "RETRY_WHEN",
    "RETRY_WHEN_OTHER",
    "RULE_KEYS",
    "TOP_LEVEL_KEYS",
    "UNSUPPORTED_ARTIFACT_KEYS",
    "UNSUPPORTED_JOB_KEYS",
    "WHEN_VALUES",
    "WORKFLOW_KEYS",
    "WORKFLOW_RULE_KEYS",
]

DEFAULT_STAGES = ("build", "test", "deploy")

# Top-level keys that are not jobs. Global image/services/cache/before_script/after_script
# are the deprecated spelling of `default:`.
TOP_LEVEL_KEYS = frozenset(
    {
        "default",
        "include",
        "stages",
        "types",
        "variables",
        "workflow",
        "image",
        "services",
        "cache",
        "before_script",
        "after_script",
    }
)

# Job keywords conveyor acts upon.
SUPPORTED_JOB_KEYS = frozenset(
    {
        "after_script",
        "allow_failure",
        "artifacts",
        "before_script",
        "cache",
        "dependencies",
        "environment",
        "except",
        "extends",
        "inherit",
        "interruptible",
        "needs",
        "only",
        "parallel",
        "resource_group",
        "retry",
        "rules",
        "script",
        "stage",
        "start_in",
        "tags",
        "timeout",
        "type",
        "variables",
        "when",
    }
)

# Job keywords accepted, recorded in Job.unsupported and reported once as a warning: they
# need a container runtime, a GitLab server or a vault that a local run does not have.
UNSUPPORTED_JOB_KEYS = frozenset(
    {
        "coverage",
        "dast_configuration",
        "hooks",
        "id_tokens",
        "identity",
        "image",
        "manual_confirmation",
        "pages",
        "release",
        "run",
        "secrets",
        "services",
        "trigger",
    }
)

JOB_KEYS = SUPPORTED_JOB_KEYS | UNSUPPORTED_JOB_KEYS

DEFAULT_KEYS = frozenset(
    {
        "after_script",
        "artifacts",
        "before_script",
        "cache",
        "hooks",
        "id_tokens",
        "image",
        "interruptible",
        "retry",
        "services",
        "tags",
        "timeout",
    }
)

RULE_KEYS = frozenset(
    {
        "if",
        "changes",
        "exists",
        "when",
        "allow_failure",
        "variables",
        "start_in",
        "needs",
        "interruptible",
    }
)
WORKFLOW_KEYS = frozenset({"rules", "name", "auto_cancel"})
WORKFLOW_RULE_KEYS = frozenset({"if", "changes", "exists", "when", "variables", "auto_cancel"})

NEED_KEYS = frozenset({"job", "optional", "artifacts", "parallel", "pipeline", "project", "ref"})

# Accepted without a warning: they only matter to a GitLab server's artifact storage.
ACCEPTED_ARTIFACT_KEYS = frozenset({"name", "expire_in", "expose_as", "public", "access"})
UNSUPPORTED_ARTIFACT_KEYS = frozenset({"untracked"})
# `reports`: its `dotenv` kind is collected (engine/dotenv.py), other kinds are warned about.
ARTIFACT_KEYS = (
    frozenset({"paths", "exclude", "when", "reports"})
    | ACCEPTED_ARTIFACT_KEYS
    | UNSUPPORTED_ARTIFACT_KEYS
)

INCLUDE_KINDS = frozenset({"local", "remote", "template", "project", "component"})

WHEN_VALUES = ("on_success", "on_failure", "always", "manual", "never", "delayed")

# GitLab retry:when failure types that can happen on a local host, mapped onto Retry.when.
RETRY_WHEN = {
    "always": ("failure", "timeout"),
    "unknown_failure": ("failure",),
    "script_failure": ("failure",),
    "stuck_or_timeout_failure": ("timeout",),
    "job_execution_timeout": ("timeout",),
}
# The other failure reasons GitLab accepts in retry:when (its job failure reasons; kept
# verbatim in Retry.when). `runner_system_failure` and `runner_interrupted` match an
# attempt whose fleet worker was lost (status.should_retry); the others never happen in
# conveyor, so they never match.
RETRY_WHEN_OTHER = frozenset(
    {
        "api_failure",
        "runner_system_failure",
        "runner_unsupported",
        "runner_interrupted",
        "runner_external_dependency_failure",
        "stale_schedule",
        "archived_failure",
        "unmet_prerequisites",
        "scheduler_failure",
        "data_integrity_failure",
        "missing_dependency_failure",
        "forward_deployment_failure",
        "user_blocked",
        "project_deleted",
        "ci_quota_exceeded",
        "pipeline_loop_detected",
        "no_matching_runner",
        "trace_size_exceeded",
        "builds_disabled",
        "environment_creation_failure",
        "deployment_rejected",
        "failed_outdated_deployment_job",
        "protected_environment_failure",
        "insufficient_bridge_permissions",
        "downstream_bridge_project_not_found",
        "invalid_bridge_trigger",
        "upstream_bridge_project_not_found",
        "insufficient_upstream_permissions",
        "bridge_pipeline_is_child_pipeline",
        "downstream_pipeline_creation_failed",
        "secrets_provider_not_found",
        "reached_max_descendant_pipelines_depth",
        "ip_restriction_failure",
        "reached_max_pipeline_hierarchy_size",
        "reached_downstream_pipeline_trigger_rate_limit",
    }
)
