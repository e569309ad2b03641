"""Property: any document, valid or mutated, gives a Pipeline or a ConfigError, never
another exception."""

from __future__ import annotations

import contextlib
import json
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.config.gitlab import parse_gitlab
from conveyor.errors import ConfigError
from conveyor.model import Pipeline

_KEYS = st.sampled_from(
    [
        "script", "stage", "needs", "rules", "only", "except", "when", "retry", "timeout",
        "parallel", "artifacts", "extends", "variables", "allow_failure", "dependencies",
        "before_script", "after_script", "environment", "image", "include", "default",
        "stages", "workflow", "if", "matrix", "paths", "max", "exit_codes", "job", "scirpt",
    ]
)  # fmt: skip
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 300),
    st.sampled_from(["echo", "build", "test", ".t", "$A == 'x'", "1h", "manual", "[", "/x/"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=4)),
    max_leaves=12,
)
_DOCS = st.dictionaries(
    st.one_of(_KEYS, st.sampled_from(["job", ".tmpl", "deploy"])), _VALUES, max_size=5
)


def _render(value: object) -> str:
    return json.dumps(value)  # JSON is YAML: a flow document


@settings(max_examples=int(os.environ.get("GITLAB_FUZZ_EXAMPLES", "150")), deadline=None)
@given(_DOCS)
def test_parse_gitlab_gives_pipeline_or_config_error(doc: dict[str, object]) -> None:
    try:
        result = parse_gitlab(_render(doc), ".gitlab-ci.yml")
    except ConfigError as exc:
        assert exc.problems
    else:
        assert isinstance(result, Pipeline)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="abc:- \n[]{}&*!'\"$#.|>", max_size=60))
def test_parse_gitlab_survives_arbitrary_text(text: str) -> None:
    with contextlib.suppress(ConfigError):
        parse_gitlab("job:\n  script: echo\n" + text, ".gitlab-ci.yml")
