"""The web boundary, framework-neutral: commands from JSON, everything else to JSON, errors to HTTP.

A host's request handlers (FastAPI, Django, Flask, a queue consumer...) call these functions and
keep routing, authentication and transport to themselves; this module imports no web framework and
takes no decision: it converts.

- :func:`command_from_json` builds a command from a JSON-decoded body through
  :func:`mediation.commands.from_payload`, the validation replay also runs; any bad input is an
  :class:`~mediation.InvalidCommand`.
- :func:`command_schema` and :func:`command_schemas`: the JSON Schema (draft 2020-12) of each
  command's body, derived from the ``json_schema`` that every validator of
  :mod:`mediation.commands` declares (and ``json_schema_extra`` for rules across fields).
- :func:`problem` maps any exception to an HTTP status and an RFC 9457 problem body, through one
  table, :data:`PROBLEM_TYPES`, resolved along the exception's MRO.
- :func:`event_json`, :func:`view_json`, :func:`timeline_json`, :func:`permissions_json` and
  :func:`verdict_json` render the library's values as JSON-native dicts and lists (``json.dumps``
  takes them as they are).

Problem ``type`` URIs are ``https://mediation.invalid/problems/<slug>`` (:data:`PROBLEM_BASE`): the
``.invalid`` top-level domain (RFC 6761) never resolves, so the URI only identifies the kind of
problem; ``docs/commands.md`` lists them.
"""

from ._web import (
    JSON_SCHEMA_DIALECT,
    PROBLEM_BASE,
    PROBLEM_CONTENT_TYPE,
    PROBLEM_TYPES,
    Problem,
    ProblemType,
    command_from_json,
    command_schema,
    command_schemas,
    event_json,
    permissions_json,
    problem,
    timeline_json,
    verdict_json,
    view_json,
)

__all__ = [
    "JSON_SCHEMA_DIALECT",
    "PROBLEM_BASE",
    "PROBLEM_CONTENT_TYPE",
    "PROBLEM_TYPES",
    "Problem",
    "ProblemType",
    "command_from_json",
    "command_schema",
    "command_schemas",
    "event_json",
    "permissions_json",
    "problem",
    "timeline_json",
    "verdict_json",
    "view_json",
]
