"""Regenerate the parts of docs/design.md and README.md that come from the program itself.

The program runs under the same Pulumi mocks as the infra tests (``infra.testing.deploy_with_mocks``),
so the diagrams show what ``pulumi up`` declares: the state machine definition the program renders, and
the rules, queues, event source mappings and function links it wires. The README's configuration table
comes from the config model (``infra/config.py``) and ``Pulumi.yaml``; its outputs table from the
program's exports; docs/runbook.md's per-function alarm sections from the functions it declares. Each
generated block sits between ``<!-- generated:NAME -->`` and
``<!-- /generated:NAME -->``; everything else is hand-written. ``tests/docs/test_generated.py`` fails
when a block is stale.

Usage, from the repository root::

    .venv/bin/python docs/generate.py           # rewrite the blocks
    .venv/bin/python docs/generate.py --check   # exit 1 naming the stale blocks
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
for _path in (REPO, REPO / "functions"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")

import yaml  # noqa: E402

from infra.config import NAMESPACE, StackConfig  # noqa: E402
from infra.testing import Deployment, deploy_with_mocks  # noqa: E402

DESIGN = REPO / "docs" / "design.md"
README = REPO / "README.md"
RUNBOOK = REPO / "docs" / "runbook.md"
#: The index id the diagrams are drawn with (any valid id: it appears in no generated block).
INDEX_ID = "0f3b1c2d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
#: A registered source, so that the outputs that only exist with ``sources`` are listed too.
SOURCES = {"hr": "teams/hr"}

#: What each stack output is for. A new output without a line here fails ``--check`` (and its test).
OUTPUT_MEANINGS: Mapping[str, str] = {
    "option": "`sfn` or `sqs`",
    "ingestion_bucket": "where teams write documents and manifests",
    "reports_bucket": "`_reports/<jobId>/…`, `_archive/<jobId>/manifest.json`, `_work/<jobId>/<runId>/…`",
    "manifest_key_pattern": "`<prefix>/_control/manifest.json`",
    "notification_topic_arn": "one message per job, and the alarms",
    "lock_table": "DynamoDB: source locks, run records, the Kendra call schedule (`kendraTps`)",
    "documents_table": "DynamoDB: fingerprints, owners and the inventory of indexed documents (GSI `bySource`)",
    "kendra_index_id": "the target index",
    "function_names": "map handler → Lambda function name",
    "dashboard_name": (
        "the stack's CloudWatch dashboard: documents, failures, job duration, Kendra throttling and latency, "
        "executions (sfn) or queue depth and age (sqs), Lambda errors, alarm states; the pipeline's metrics "
        "are in the namespace `KendraIngestion/<project>-<stack>`"
    ),
    "source_writer_policies": (
        "map source → ARN of a managed policy allowing `s3:PutObject` only under `<prefix>/*` of the "
        "ingestion bucket (attach it to the team's own role)"
    ),
    "state_machine_arn": "the orchestrator",
    "put_queue_url": "FIFO work queue of put parts",
    "delete_queue_url": "FIFO work queue of delete parts",
    "put_dlq_url": "dead-letter queue of the put queue",
    "delete_dlq_url": "dead-letter queue of the delete queue",
}


# ------------------------------------------------------------------------------------------- program


@cache
def deployment(stack: str, with_sources: bool = False) -> Deployment:
    """The program run under mocks for ``stack`` (``sfn`` or ``sqs``), the config defaults otherwise."""
    config: dict[str, Any] = {"kendraIndexId": INDEX_ID}
    if with_sources:
        config["sources"] = SOURCES
    return deploy_with_mocks(config, stack)


def _id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _label(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'


# ------------------------------------------------------------------------------------ state machine


def _condition(choice: Mapping[str, Any]) -> str:
    """A short label for a Choice rule: its variable (without ``$.``) and comparison."""
    for combinator in ("And", "Or"):
        if combinator in choice:
            return f" {combinator.lower()} ".join(_condition(c) for c in choice[combinator])
    if "Not" in choice:
        return "not " + _condition(choice["Not"])
    variable = str(choice.get("Variable", "")).removeprefix("$.")
    if "BooleanEquals" in choice:
        return variable if choice["BooleanEquals"] else f"not {variable}"
    if "IsPresent" in choice:
        return f"{variable} present" if choice["IsPresent"] else f"{variable} absent"
    for key, value in choice.items():
        if key not in ("Variable", "Next"):
            op = re.sub(r"(?<!^)(?=[A-Z])", " ", key).lower().replace(" path", "")
            return f"{variable} {op} {json.dumps(value)}"
    return variable


def _states(states: Mapping[str, Any], lines: list[str], indent: str) -> None:
    for name, state in states.items():
        kind = state["Type"]
        node = _id(name)
        if kind == "Choice":
            lines.append(f"{indent}{node}{{{_label(name)}}}")
        elif kind in ("Succeed", "Fail"):
            lines.append(f"{indent}{node}([{_label(name)}])")
        elif kind == "Map":
            lines.append(f"{indent}subgraph {node} [{_label(name + ' (Map: one item per part)')}]")
            processor = state.get("ItemProcessor") or state.get("Iterator") or {}
            lines.append(f"{indent}  direction TB")
            _states(processor.get("States", {}), lines, indent + "  ")
            lines.append(f"{indent}end")
        elif kind == "Wait":
            lines.append(f"{indent}{node}[/{_label(name)}/]")
        else:
            lines.append(f"{indent}{node}[{_label(name)}]")


def _edges(states: Mapping[str, Any], lines: list[str]) -> None:
    for name, state in states.items():
        node = _id(name)
        if "Next" in state:
            lines.append(f"  {node} --> {_id(state['Next'])}")
        for choice in state.get("Choices", ()):
            lines.append(f"  {node} -->|{_label(_condition(choice))}| {_id(choice['Next'])}")
        if "Default" in state:
            lines.append(f"  {node} -->|otherwise| {_id(state['Default'])}")
        for catch in state.get("Catch", ()):
            lines.append(f"  {node} -.->|{_label('catch ' + ', '.join(catch['ErrorEquals']))}| {_id(catch['Next'])}")
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            _edges(processor["States"], lines)


def state_machine_diagram() -> str:
    """Mermaid flowchart of the orchestrator as the program declares it (option sfn)."""
    (machine,) = deployment("sfn").of_type("aws:sfn/stateMachine:StateMachine")
    definition = json.loads(machine.inputs["definition"])
    lines = ["```mermaid", "flowchart TD", "  start((start))"]
    _states(definition["States"], lines, "  ")
    lines.append(f"  start --> {_id(definition['StartAt'])}")
    _edges(definition["States"], lines)
    lines.append("```")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------- resource flow


def resource_flow_diagram(stack: str) -> str:
    """Mermaid flowchart of what starts what: rules, targets, queues, mappings, function links, topic."""
    d = deployment(stack)
    handlers = {name: handler for handler, name in d.outputs["function_names"].items()}
    nodes: dict[str, str] = {}
    edges: list[str] = []

    def node(key: str, text: str, shape: str = "[{}]") -> str:
        nodes.setdefault(key, f"  {_id(key)}{shape.format(_label(text))}")
        return _id(key)

    def by_arn(arn: str) -> str | None:
        for r in d.resources:
            if r.state.get("arn") == arn:
                return describe(r)
        return None

    def describe(r: Any) -> str:
        if r.type == "aws:lambda/function:Function":
            handler = handlers[r.state["name"]]
            return node(f"fn_{handler}", f"λ {handler}")
        if r.type == "aws:sqs/queue:Queue":
            return node(f"q_{r.name}", f"SQS {r.inputs['name']}".replace(f"kendra-ingestion-{stack}-", ""), "[({})]")
        if r.type == "aws:sfn/stateMachine:StateMachine":
            return node("machine", "state machine (diagram above)", "[[{}]]")
        if r.type == "aws:sns/topic:Topic":
            return node("topic", "SNS notification topic", "[/{}/]")
        return node(r.name, r.name)

    bucket = node("bucket", "S3 ingestion bucket: P/_control/manifest.json", "[({})]")
    for rule in d.of_type("aws:cloudwatch/eventRule:EventRule"):
        if "scheduleExpression" in rule.inputs:
            source = node(f"rule_{rule.name}", f"EventBridge schedule {rule.inputs['scheduleExpression']}", "{{{}}}")
        else:
            pattern = json.loads(rule.inputs["eventPattern"])
            kind = pattern.get("detail-type", ["event"])[0]
            statuses = pattern.get("detail", {}).get("status")
            text = f"EventBridge rule: {kind}" + (f" {' | '.join(statuses)}" if statuses else "")
            source = node(f"rule_{rule.name}", text, "{{{}}}")
            if pattern.get("source") == ["aws.s3"]:
                edges.append(f"  {bucket} --> {source}")
            elif pattern.get("source") == ["aws.states"]:
                edges.append(f"  {describe(d.of_type('aws:sfn/stateMachine:StateMachine')[0])} -.-> {source}")
        physical = rule.state.get("name")
        for target in d.of_type("aws:cloudwatch/eventTarget:EventTarget"):
            if target.inputs.get("rule") == physical and (to := by_arn(target.inputs["arn"])):
                edges.append(f"  {source} --> {to}")
    queues = {q.state["arn"]: q for q in d.of_type("aws:sqs/queue:Queue")}
    urls = {q.state.get("url"): q for q in queues.values()}
    for q in queues.values():
        if policy := q.inputs.get("redrivePolicy"):
            redrive = json.loads(policy)
            edges.append(f"  {describe(q)} -.->|{_label('after ' + str(redrive['maxReceiveCount']) + ' receives')}| "
                         f"{describe(queues[redrive['deadLetterTargetArn']])}")
    for mapping in d.of_type("aws:lambda/eventSourceMapping:EventSourceMapping"):
        concurrency = int(mapping.inputs.get("scalingConfig", {}).get("maximumConcurrency", 0))
        label = f"batches of ≤ {int(mapping.inputs['batchSize'])}, concurrency ≤ {concurrency}"
        fn = by_arn(mapping.inputs["functionName"])
        edges.append(f"  {describe(queues[mapping.inputs['eventSourceArn']])} -->|{_label(label)}| {fn}")
    functions = {f.state["name"]: f for f in d.of_type("aws:lambda/function:Function")}
    topic_arn = d.outputs["notification_topic_arn"]
    for f in functions.values():
        variables = f.inputs.get("environment", {}).get("variables", {})
        for key, value in sorted(variables.items()):
            if key.endswith("_FUNCTION") and value in functions:
                edges.append(f"  {describe(f)} -->|invokes| {describe(functions[value])}")
            elif value in urls:
                edges.append(f"  {describe(f)} -->|sends parts| {describe(urls[value])}")
            elif key == "TOPIC_ARN" and value == topic_arn:
                edges.append(f"  {describe(f)} -->|notifies| {node('topic', 'SNS notification topic', '[/{}/]')}")
    if stack == "sfn":
        edges.append(f"  {node('machine', 'state machine (diagram above)', '[[{}]]')} -->|Notify| "
                     f"{node('topic', 'SNS notification topic', '[/{}/]')}")
    # Sorted: the mocks record resources in whatever order registrations finish.
    return "\n".join(["```mermaid", "flowchart LR", *sorted(nodes.values()), *sorted(set(edges)), "```"])


# ------------------------------------------------------------------------------------------ tables


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.default
    if value is None:
        return "optional"
    if isinstance(value, bool):
        return f"default `{str(value).lower()}`"
    if isinstance(value, tuple | list):
        return f"default `{json.dumps(list(value))}`"
    return f"default `{value}`"


def config_table() -> str:
    """Every stack config key: its rule and default (the model) and its meaning (Pulumi.yaml)."""
    declared = yaml.safe_load((REPO / "Pulumi.yaml").read_text())["config"]
    rows = ["| key | type / default | meaning |", "|---|---|---|"]
    for field in StackConfig.model_fields.values():
        key = str(field.alias)
        default = _default(field)
        if key == "option":
            default = "default: the stack name when it is `sfn` or `sqs`, else required"
        rows.append(f"| `{key}` | {_cell(str(field.description))}; {default} | "
                    f"{_cell(str(declared[key]['description']))} |")
    return "\n".join(rows)


def outputs_table() -> str:
    """Every stack output, when it exists, and what it is for."""
    present = {
        "sfn": set(deployment("sfn").outputs), "sqs": set(deployment("sqs").outputs),
        "sources": set(deployment("sfn", True).outputs) | set(deployment("sqs", True).outputs),
    }
    everywhere = present["sfn"] & present["sqs"]
    names = list(dict.fromkeys([*deployment("sfn").outputs, *deployment("sqs").outputs,
                                *deployment("sfn", True).outputs]))
    missing = [n for n in names if n not in OUTPUT_MEANINGS]
    if missing:
        raise SystemExit(f"docs/generate.py: add a meaning to OUTPUT_MEANINGS for {', '.join(missing)}")
    rows = ["| output | present | meaning |", "|---|---|---|"]
    for name in names:
        when = ("always" if name in everywhere else "option sfn" if name in present["sfn"]
                else "option sqs" if name in present["sqs"] else "with `sources`")
        rows.append(f"| `{name}` | {when} | {_cell(OUTPUT_MEANINGS[name])} |")
    return "\n".join(rows)


# ----------------------------------------------------------------------------------------- runbook

#: What each handler does, and what its errors mean for a job (the runbook's per-function sections).
HANDLER_NOTES: Mapping[str, tuple[str, str]] = {
    "load_manifest": ("reads and validates the manifest an S3 event announced (option sfn, first step)",
                      "the execution's Catch writes a FAILED report; a manifest it cannot even read "
                      "(deleted, no permission) fails the same way"),
    "acquire_lock": ("claims the run and the source lock (option sfn)",
                     "the job ends FAILED before anything is sent; DynamoDB throttling or permissions are "
                     "the usual causes"),
    "list_batches": ("lists, pairs and packs the job into parts, and starts the data-source sync job",
                     "the job ends FAILED before anything is sent; a timeout here is a job too large to "
                     "plan in 15 minutes, a `SyncJobBusy` retry is another sync job of the data source"),
    "process_batch": ("sends one part to Kendra (option sfn, in the Distributed Map)",
                      "the Map retries the part, then its Catch reports the part's documents as failed "
                      "(`States.TaskFailed` or the error name in failures.csv); the job still finishes"),
    "verify_indexing": ("polls BatchGetDocumentStatus for the job's puts",
                        "the job finishes without verification: unconfirmed documents are "
                        "`IndexingUnconfirmed` and are sent again by the next job"),
    "aggregate_failures": ("writes failures.csv and summary.json and archives the manifest (option sfn)",
                           "the report is missing or late: the execution ends `PipelineFailed` after "
                           "NotifyReportError, and the lock is still released"),
    "release_lock": ("releases the source lock at the end of an execution (option sfn)",
                     "the source stays locked until its lease ends (24 h): free it by hand"),
    "finish_abandoned": ("finishes the job of an execution that failed, timed out or was aborted",
                         "that job has no report and its source stays locked: write the report by re-running "
                         "the job, and free the lock"),
    "producer": ("claims the run, takes the source lock, plans and sends the parts (option sqs)",
                 "EventBridge retries the invocation; a job that never got sealed is picked up by the "
                 "watchdog, and a persistent error leaves the source locked"),
    "put_worker": ("sends put parts from the put queue to Kendra (option sqs)",
                   "the failed message comes back after the visibility timeout; after 5 receives it goes to "
                   "the put DLQ and its documents become `DeadLettered`"),
    "del_worker": ("sends delete parts from the delete queue to Kendra (option sqs)",
                   "as for put_worker, through the delete DLQ"),
    "dead_letter": ("settles parts whose messages reached a DLQ (option sqs)",
                    "the dead letters stay in the DLQ (the DLQ depth alarm fires too) and their jobs do not "
                    "finish until it succeeds or the watchdog aborts them"),
    "summarizer": ("verifies, writes the report, notifies and releases the source (option sqs)",
                   "the job has no report yet; the watchdog retries the summary of sealed jobs every 5 "
                   "minutes, and a summary lease that ran out is taken over"),
    "watchdog": ("every 5 minutes: summarizes, aborts or restarts jobs the event flow left behind",
                 "stuck jobs are not rescued until it works again: look for jobs without a report"),
}


def function_alarm_sections() -> str:
    """One runbook section per function alarm (errors and throttles of every handler, both options)."""
    from infra.monitoring import alarm_suffix

    handlers: dict[str, str] = {}
    for stack in ("sfn", "sqs"):
        for handler in deployment(stack).outputs["function_names"]:
            handlers.setdefault(handler, stack)
    missing = sorted(set(handlers) - set(HANDLER_NOTES))
    if missing:
        raise SystemExit(f"docs/generate.py: add HANDLER_NOTES for {', '.join(missing)}")
    out = []
    for handler, stack in handlers.items():
        does, impact = HANDLER_NOTES[handler]
        errors, throttles = alarm_suffix(f"{handler}-errors"), alarm_suffix(f"{handler}-throttles")
        out += [
            f"### {errors}", "",
            f"Alarm `<project>-<stack>-{errors}` (option {stack}): the `{handler}` function, which {does}, "
            "ended at least one invocation with an error in 5 minutes.", "",
            f"- **What it means**: {impact}.",
            f"- **Look first**: the [errors query](#find-a-functions-errors) on `/aws/lambda/<project>-<stack>-"
            f"{handler.replace('_', '-')}`; its `jobId` lines lead to the job's [report](#read-a-jobs-report).",
            "- **Fix**: the cause the log names (permissions, a bad deploy, a timeout: raise `lambdaMemoryMb` or "
            "split the job), then [re-run the job](#re-run-a-job) if its report shows failures from it; "
            "[free the source lock](#free-a-stuck-source-lock) if the job left it held.", "",
            f"### {throttles}", "",
            f"Alarm `<project>-<stack>-{throttles}` (option {stack}): Lambda refused to run `{handler}` for lack of "
            "concurrency.", "",
            "- **What it means**: the account's (or the function's reserved) concurrency is used up; the caller "
            "retries (Step Functions Retry, EventBridge, SQS), so jobs are slower, not lost.",
            "- **Look first**: the dashboard's \"Lambda throttles\" graph and the account's "
            "`ConcurrentExecutions` metric.",
            "- **Fix**: [lower or raise the concurrency](#raise-kendratps-or-the-concurrency): fewer Map "
            "iterations or workers, or a higher account quota.", "",
        ]
    return "\n".join(out).rstrip()


# ------------------------------------------------------------------------------------------ blocks

#: file -> block name -> what renders it.
BLOCKS: Mapping[Path, Mapping[str, Callable[[], str]]] = {
    DESIGN: {
        "state-machine": state_machine_diagram,
        "sfn-flow": lambda: resource_flow_diagram("sfn"),
        "sqs-flow": lambda: resource_flow_diagram("sqs"),
    },
    README: {"config": config_table, "outputs": outputs_table, "state-machine": state_machine_diagram,
             "sqs-flow": lambda: resource_flow_diagram("sqs")},
    RUNBOOK: {"function-alarms": function_alarm_sections},
}


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with the block ``name`` holding ``body``; raises ``KeyError`` when its markers are missing."""
    start, end = f"<!-- generated:{name} -->", f"<!-- /generated:{name} -->"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise KeyError(f"no {start} … {end} markers")
    note = f"<!-- generated by docs/generate.py from the program ({NAMESPACE}); do not edit by hand -->"
    return pattern.sub(lambda _: f"{start}\n{note}\n{body}\n{end}", text, count=1)


def rendered(path: Path, names: Iterable[str] | None = None) -> str:
    """The file's text with its generated blocks as the program renders them now."""
    text = path.read_text()
    for name, render in BLOCKS[path].items():
        if names is None or name in names:
            text = replace_block(text, name, render())
    return text


def stale() -> list[str]:
    """``file#block`` for every generated block that differs from what the program renders now."""
    out = []
    for path, blocks in BLOCKS.items():
        current = path.read_text()
        for name in blocks:
            if rendered(path, [name]) != current:
                out.append(f"{path.relative_to(REPO)}#{name}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a generated block is stale")
    args = parser.parse_args(argv)
    if args.check:
        behind = stale()
        for block in behind:
            print(f"stale: {block} (run .venv/bin/python docs/generate.py)")
        return 1 if behind else 0
    for path in BLOCKS:
        path.write_text(rendered(path))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
