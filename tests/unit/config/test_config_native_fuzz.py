"""Random and mutated documents: the parser returns a Pipeline or raises ConfigError."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor.config.native import JOB_KEYS, TOP_KEYS, parse_native
from conveyor.config.native_fields import STEP_KEYS, WHEN_KEYS
from conveyor.errors import ConfigError
from conveyor.model import Pipeline

NAMES = ["a", "b", "c", "build", "test"]
WORDS = [*TOP_KEYS, *JOB_KEYS, *STEP_KEYS, *WHEN_KEYS, "push", "tag", "on", "yes", "10m",
         "1h30m", "x", "$A == '1'", "failure", "always", "[", "bash", *NAMES]  # fmt: skip

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 300), st.floats(allow_nan=False, width=16),
    st.sampled_from(WORDS), st.text(max_size=8),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(WORDS), inner, max_size=4),
    ),
    max_leaves=25,
)

step = st.one_of(
    st.sampled_from(["make", "true", ""]),
    st.fixed_dictionaries(
        {"run": st.sampled_from(["x", "y"])}, optional={"name": values, "timeout": values}
    ),
)
when_block = st.fixed_dictionaries({}, optional=dict.fromkeys(WHEN_KEYS, values))
job = st.fixed_dictionaries(
    {},
    optional={
        "run": st.one_of(st.just("echo"), values),
        "steps": st.one_of(st.lists(step, max_size=3), values),
        "needs": st.one_of(st.lists(st.sampled_from(NAMES), max_size=3), values),
        "stage": st.one_of(st.sampled_from(["build", "test", "other"]), values),
        "timeout": st.one_of(st.sampled_from(["10m", "1h", "0", "5x"]), values),
        "retry": values,
        "when": st.one_of(
            st.fixed_dictionaries({}, optional=dict.fromkeys(WHEN_KEYS, values)), values
        ),
        "matrix": st.one_of(
            st.dictionaries(st.sampled_from(["A", "B"]), st.lists(scalars, max_size=3)), values
        ),
        "manual": values,
        "artifacts": values,
        "env": values,
        "shell": values,
        "allow_failure": values,
    },
)
document = st.fixed_dictionaries(
    {"jobs": st.one_of(st.dictionaries(st.sampled_from(NAMES), job, max_size=5), values)},
    optional={k: values for k in TOP_KEYS if k != "jobs"},
)


def check(text: str) -> None:
    try:
        pipeline = parse_native(text, "f.yml")
    except ConfigError as exc:
        assert exc.problems
        assert all(str(problem).startswith("f.yml:") for problem in exc.problems)
    else:
        assert isinstance(pipeline, Pipeline)
        assert pipeline.jobs


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document)
def test_parse_native_structured_documents(doc: dict[str, object]) -> None:
    check(yaml.safe_dump(doc, sort_keys=False))


@settings(max_examples=200, deadline=None)
@given(document, st.integers(0, 400), st.text(max_size=6))
def test_parse_native_mutated_text(doc: dict[str, object], at: int, insert: str) -> None:
    text = yaml.safe_dump(doc, sort_keys=False)
    at = at % (len(text) + 1)
    check(text[:at] + insert + text[at + len(insert) :])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_parse_native_random_text(text: str) -> None:
    check(text)
