"""The project's security rules (README, "What the stack creates"), as plain functions over declared resources.

Each rule takes the resources a program declared (anything with ``type``, ``name``, ``inputs`` and
``state``, e.g. :class:`infra.testing.RecordedResource`) and returns one line per violation. They run
in the unit tests over the mocked stack, and the CrossGuard policy pack ``policy/`` calls the same functions
(``pulumi preview --policy-pack policy``).

Example::

    violations = check(deploy_with_mocks(config, "sfn").resources)
    assert violations == []
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from infra.defaults import DLQ_RETENTION_SECONDS, MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT_FACTOR
from infra.encryption import ALARMS_SID, ROOT_SID
from infra.function import ARCHITECTURE, RUNTIME
from infra.iam import LOG_DELIVERY_SID, XRAY_SID

BUCKET = "aws:s3/bucket:Bucket"
QUEUE = "aws:sqs/queue:Queue"
TOPIC = "aws:sns/topic:Topic"
TABLE = "aws:dynamodb/table:Table"
FUNCTION = "aws:lambda/function:Function"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
KEY = "aws:kms/key:Key"
ALIAS = "aws:kms/alias:Alias"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
STATE_MACHINE = "aws:sfn/stateMachine:StateMachine"
BUCKET_LOGGING = "aws:s3/bucketLogging:BucketLogging"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
BUCKET_NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
#: S3's server access log delivery (bucket-policy based, no ACL).
LOG_DELIVERY_SERVICE = "logging.s3.amazonaws.com"

#: Statement ids allowed ``Resource: "*"``, and why.
WILDCARD_RESOURCE_ALLOWED = {
    XRAY_SID: "X-Ray's write and sampling actions support no resource but *",
    LOG_DELIVERY_SID: "CloudWatch Logs delivery actions (Step Functions logging) support no resource but *",
    ROOT_SID: "in a key policy, * means this key",
    ALARMS_SID: "in a key policy, * means this key",
}
#: Statement ids allowed a wildcard action, and why.
WILDCARD_ACTION_ALLOWED = {
    ROOT_SID: "the account root administers its key (AWS's default key policy; prevents an unmanageable key)",
}
#: Which input holds a policy document, per resource type.
POLICY_INPUTS = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/policy:Policy": "policy",
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
    "aws:sqs/queuePolicy:QueuePolicy": "policy",
    "aws:sns/topicPolicy:TopicPolicy": "policy",
    KEY: "policy",
}
KENDRA_INDEX_ARN = re.compile(
    r"^arn:aws[a-z-]*:kendra:[a-z0-9-]+:\d{12}:index/[a-zA-Z0-9][a-zA-Z0-9-]{35}(/data-source/[A-Za-z0-9_-]+)?$"
)


class Declared(Protocol):
    """A declared resource, as the mocks saw it."""

    type: str
    name: str
    inputs: Mapping[str, Any]
    state: Mapping[str, Any]


Rule = Callable[[Sequence[Declared]], list[str]]


def _of(resources: Sequence[Declared], type_: str) -> list[Declared]:
    return [r for r in resources if r.type == type_]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def statements(resources: Sequence[Declared]) -> Iterator[tuple[Declared, dict[str, Any]]]:
    """Every statement of every policy document the resources hold."""
    for resource in resources:
        key = POLICY_INPUTS.get(resource.type)
        document = resource.inputs.get(key) if key else None
        if document:
            body = json.loads(document) if isinstance(document, str) else document
            for statement in _as_list(body.get("Statement")):
                yield resource, statement


def _denies_insecure(statement: dict[str, Any], actions: Sequence[str], resources: Sequence[str]) -> bool:
    secure = statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")
    listed = _as_list(statement.get("Action"))
    covered = all(a in listed or f"{a.split(':')[0]}:*" in listed or "*" in listed for a in actions)
    return (
        statement.get("Effect") == "Deny"
        and statement.get("Principal") in ("*", {"AWS": "*"})
        and str(secure).lower() == "false"
        and covered
        and set(resources) <= set(_as_list(statement.get("Resource")))
    )


def _tls_only(
    resources: Sequence[Declared],
    kind: str,
    policy_type: str,
    link: str,
    actions: Sequence[str],
    targets: Callable[[Declared], list[str]],
    rule: str,
) -> list[str]:
    violations = []
    for resource in _of(resources, kind):
        ident = resource.state.get(link) or resource.state.get("id")
        policies = [p for p in _of(resources, policy_type) if ident in p.inputs.values()]
        ok = any(_denies_insecure(s, actions, targets(resource)) for _, s in statements(policies))
        if not ok:
            violations.append(f"{rule}: {kind} {resource.name} has no policy denying non-TLS requests")
    return violations


def bucket_public_access_blocked(resources: Sequence[Declared]) -> list[str]:
    """Every bucket has a public access block with all four settings on."""
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    blocks = _of(resources, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    return [
        f"public-access: bucket {b.name} lacks a full public access block"
        for b in _of(resources, BUCKET)
        if not any(
            p.inputs.get("bucket") == b.state.get("bucket") and all(p.inputs.get(f) is True for f in flags)
            for p in blocks
        )
    ]


def buckets_tls_only(resources: Sequence[Declared]) -> list[str]:
    """Every bucket policy denies non-TLS access to the bucket and its objects."""
    return _tls_only(
        resources,
        BUCKET,
        "aws:s3/bucketPolicy:BucketPolicy",
        "bucket",
        ("s3:GetObject",),
        lambda b: [b.state["arn"], f"{b.state['arn']}/*"],
        "tls-only",
    )


def queues_tls_only(resources: Sequence[Declared]) -> list[str]:
    """Every queue policy denies non-TLS access."""
    return _tls_only(
        resources,
        QUEUE,
        "aws:sqs/queuePolicy:QueuePolicy",
        "url",
        ("sqs:SendMessage",),
        lambda q: [q.state["arn"]],
        "tls-only",
    )


def topics_tls_only(resources: Sequence[Declared]) -> list[str]:
    """Every topic policy denies non-TLS publish and subscribe."""
    return _tls_only(
        resources,
        TOPIC,
        "aws:sns/topicPolicy:TopicPolicy",
        "arn",
        ("sns:Publish", "sns:Subscribe"),
        lambda t: [t.state["arn"]],
        "tls-only",
    )


def _stack_keys(resources: Sequence[Declared]) -> set[str]:
    """ARNs of the stack key (encryption=kms), leaving out the topic's own key (alias ``...-topic``)."""
    topic_key_ids = {
        a.inputs.get("targetKeyId") for a in _of(resources, ALIAS) if str(a.inputs.get("name", "")).endswith("-topic")
    }
    return {k.state.get("arn") for k in _of(resources, KEY) if k.state.get("keyId") not in topic_key_ids}


def _log_targets(resources: Sequence[Declared]) -> set[str]:
    """Names of the buckets that receive S3 server access logs."""
    return {str(r.inputs.get("targetBucket")) for r in _of(resources, BUCKET_LOGGING)}


def encrypted_at_rest(resources: Sequence[Declared]) -> list[str]:
    """Buckets, queues, topics and tables are encrypted; with a stack key, all of them use it.

    The topic always has a customer managed key (CloudWatch alarms cannot use ``alias/aws/sns``). A bucket
    receiving server access logs is SSE-S3 (AES256): S3 cannot deliver access logs to an SSE-KMS bucket.
    """
    keys = _stack_keys(resources)
    log_targets = _log_targets(resources)
    topic_keys = {k.state.get("arn") for k in _of(resources, KEY)}
    violations = []
    sse = _of(resources, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    for bucket in _of(resources, BUCKET):
        defaults = [
            rule.get("applyServerSideEncryptionByDefault", {})
            for c in sse
            if c.inputs.get("bucket") == bucket.state.get("bucket")
            for rule in c.inputs.get("rules", [])
        ]
        if not any(d.get("sseAlgorithm") in ("AES256", "aws:kms") for d in defaults):
            violations.append(f"encryption: bucket {bucket.name} has no default encryption")
        elif bucket.state.get("bucket") in log_targets:
            if not all(d.get("sseAlgorithm") == "AES256" for d in defaults):
                violations.append(f"encryption: access-log bucket {bucket.name} must be SSE-S3 (AES256)")
        elif keys and not any(d.get("kmsMasterKeyId") in keys for d in defaults):
            violations.append(f"encryption: bucket {bucket.name} does not use the stack key")
    for queue in _of(resources, QUEUE):
        key = queue.inputs.get("kmsMasterKeyId")
        if not (key or queue.inputs.get("sqsManagedSseEnabled")) or (keys and key not in keys):
            violations.append(f"encryption: queue {queue.name} is not encrypted (with the stack key, if any)")
    for topic in _of(resources, TOPIC):
        key = topic.inputs.get("kmsMasterKeyId")
        if not key or key not in topic_keys or (keys and key not in keys):
            violations.append(f"encryption: topic {topic.name} is not encrypted (with the stack key, if any)")
    for table in _of(resources, TABLE):  # DynamoDB always encrypts; with a stack key it must be ours
        sse_table = table.inputs.get("serverSideEncryption") or {}
        if keys and not (sse_table.get("enabled") and sse_table.get("kmsKeyArn") in keys):
            violations.append(f"encryption: table {table.name} does not use the stack key")
    return violations


def no_acls(resources: Sequence[Declared]) -> list[str]:
    """ACLs are disabled (BucketOwnerEnforced) and none is set."""
    controls = _of(resources, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    violations = [
        f"no-acls: {r.type} {r.name} sets an ACL"
        for r in resources
        if r.type.startswith("aws:s3/bucketAcl")
        or (r.type == BUCKET and (r.inputs.get("acl") or r.inputs.get("grants")))
    ]
    for bucket in _of(resources, BUCKET):
        if not any(
            c.inputs.get("bucket") == bucket.state.get("bucket")
            and (c.inputs.get("rule") or {}).get("objectOwnership") == "BucketOwnerEnforced"
            for c in controls
        ):
            violations.append(f"no-acls: bucket {bucket.name} does not enforce bucket-owner ownership")
    return violations


def _source_arns(statement: dict[str, Any]) -> list[Any]:
    return _as_list(((statement.get("Condition") or {}).get("ArnLike") or {}).get("aws:SourceArn"))


def _source_account(statement: dict[str, Any]) -> Any:
    return ((statement.get("Condition") or {}).get("StringEquals") or {}).get("aws:SourceAccount")


def access_logged(resources: Sequence[Declared]) -> list[str]:
    """Every bucket but the logs bucket sends server access logs to a bucket of the stack, which lets only
    S3's logging service write them, only for those buckets (``aws:SourceArn``) and this account."""
    buckets = {b.state.get("bucket"): b for b in _of(resources, BUCKET)}
    arns = {name: b.state.get("arn") for name, b in buckets.items()}
    targets = _log_targets(resources)
    logging = {r.inputs.get("bucket"): r.inputs.get("targetBucket") for r in _of(resources, BUCKET_LOGGING)}
    violations = []
    for name, bucket in buckets.items():
        if name in targets:
            continue
        target = logging.get(name)
        if target not in buckets:
            violations.append(f"access-logs: bucket {bucket.name} sends no server access logs to a stack bucket")
            continue
        allowed = [
            statement
            for policy in _of(resources, BUCKET_POLICY)
            if policy.inputs.get("bucket") == target
            for _, statement in statements([policy])
            if statement.get("Effect") == "Allow"
            and (statement.get("Principal") or {}).get("Service") == LOG_DELIVERY_SERVICE
        ]
        scoped = [st for st in allowed if arns.get(name) in _source_arns(st) and _as_list(st.get("Action")) == [
            "s3:PutObject"]]
        unscoped = [st for st in allowed if not _source_arns(st) or not _source_account(st)]
        if not scoped or unscoped:
            violations.append(
                f"access-logs: logs bucket of {bucket.name} does not limit log delivery to it (aws:SourceArn) "
                "and the account (aws:SourceAccount)"
            )
    return violations


#: Resource types that hold data the index cannot rebuild (documents, reports, the ledger, the locks).
DATA_TYPES = (BUCKET, TABLE)


def data_protected(resources: Sequence[Declared]) -> list[str]:
    """Buckets and tables are ``protect``ed and retained on delete; tables have deletion protection."""
    violations = []
    for resource in resources:
        if resource.type not in DATA_TYPES:
            continue
        options = getattr(resource, "options", None) or {}
        # CrossGuard does not show retain_on_delete (absent there); the mocks record it.
        if not (options.get("protect") and options.get("retain_on_delete", True)):
            violations.append(f"protect: {resource.type} {resource.name} is not protected and retained on delete")
        if resource.type == TABLE and not resource.inputs.get("deletionProtectionEnabled"):
            violations.append(f"protect: table {resource.name} has no deletion protection")
    return violations


def tables_have_pitr(resources: Sequence[Declared]) -> list[str]:
    """Every table has point-in-time recovery."""
    return [
        f"pitr: table {t.name} has no point-in-time recovery"
        for t in _of(resources, TABLE)
        if not (t.inputs.get("pointInTimeRecovery") or {}).get("enabled")
    ]


def no_wildcard_actions(resources: Sequence[Declared]) -> list[str]:
    """No Allow statement grants a wildcard action (``*``, ``s3:*``, ``s3:Get*``) or uses NotAction."""
    violations = []
    for resource, statement in statements(resources):
        if statement.get("Effect") != "Allow" or statement.get("Sid") in WILDCARD_ACTION_ALLOWED:
            continue
        wild = [a for a in _as_list(statement.get("Action")) if "*" in a]
        if wild or "NotAction" in statement:
            violations.append(
                f"wildcard-action: {resource.type} {resource.name} statement "
                f"{statement.get('Sid')} allows {wild or 'NotAction'}"
            )
    return violations


def wildcard_resources_allowlisted(resources: Sequence[Declared]) -> list[str]:
    """``Resource: "*"`` only in statements AWS requires it for (:data:`WILDCARD_RESOURCE_ALLOWED`)."""
    return [
        f"wildcard-resource: {r.type} {r.name} statement {s.get('Sid')} allows Resource *"
        for r, s in statements(resources)
        if s.get("Effect") == "Allow"
        and "*" in _as_list(s.get("Resource"))
        and s.get("Sid") not in WILDCARD_RESOURCE_ALLOWED
    ]


def kendra_scoped_to_index(resources: Sequence[Declared]) -> list[str]:
    """Kendra actions name only the stack's index (or a data source under it), and one index only."""
    violations, indexes = [], set()
    for resource, statement in statements(resources):
        if not any(str(a).startswith("kendra:") for a in _as_list(statement.get("Action"))):
            continue
        for arn in _as_list(statement.get("Resource")):
            match = KENDRA_INDEX_ARN.match(arn)
            if match is None:
                violations.append(f"kendra-scope: {resource.name} statement {statement.get('Sid')} names {arn}")
            else:
                indexes.add(arn.split("/data-source/")[0])
    if len(indexes) > 1:
        violations.append(f"kendra-scope: statements name several indexes: {sorted(indexes)}")
    return violations


def lambda_runtime(resources: Sequence[Declared]) -> list[str]:
    """arm64, python3.13, explicit memory and timeout, X-Ray active."""
    violations = []
    for f in _of(resources, FUNCTION):
        i = f.inputs
        if i.get("architectures") != [ARCHITECTURE]:
            violations.append(f"lambda: {f.name} is not {ARCHITECTURE}")
        if i.get("runtime") != RUNTIME:
            violations.append(f"lambda: {f.name} runtime is {i.get('runtime')}, not {RUNTIME}")
        if not i.get("memorySize") or not i.get("timeout"):
            violations.append(f"lambda: {f.name} has no explicit memory and timeout")
        if (i.get("tracingConfig") or {}).get("mode") != "Active":
            violations.append(f"lambda: {f.name} does not have X-Ray tracing active")
    return violations


def log_retention(resources: Sequence[Declared]) -> list[str]:
    """Every log group has retention; every function and state machine logs to one of them."""
    groups = {g.inputs.get("name"): g for g in _of(resources, LOG_GROUP)}
    violations = [
        f"log-retention: log group {g.name} keeps logs forever"
        for g in groups.values()
        if not g.inputs.get("retentionInDays")
    ]
    for f in _of(resources, FUNCTION):
        target = (f.inputs.get("loggingConfig") or {}).get("logGroup") or f"/aws/lambda/{f.state.get('name')}"
        if target not in groups:
            violations.append(f"log-retention: function {f.name} logs to {target}, which the stack does not manage")
    for machine in _of(resources, STATE_MACHINE):
        destination = (machine.inputs.get("loggingConfiguration") or {}).get("logDestination", "")
        if not any(g.state.get("arn") and destination.startswith(g.state["arn"]) for g in groups.values()):
            violations.append(f"log-retention: state machine {machine.name} does not log to a managed group")
    return violations


def _queue_by_arn(resources: Sequence[Declared]) -> dict[str, Declared]:
    return {q.state.get("arn"): q for q in _of(resources, QUEUE)}


def dead_letter_queues(resources: Sequence[Declared]) -> list[str]:
    """Consumed work queues redrive to a DLQ after >= 5 receives; DLQs and work queues keep messages 14
    days (a FIFO message that expires is dropped without reaching its DLQ: a part lost unreported)."""
    queues = _queue_by_arn(resources)
    violations, dlqs = [], set()
    for queue in queues.values():
        if not queue.inputs.get("redrivePolicy"):
            continue
        policy = json.loads(queue.inputs["redrivePolicy"])
        dlqs.add(policy.get("deadLetterTargetArn"))
        if policy.get("maxReceiveCount", 0) < MAX_RECEIVE_COUNT:
            violations.append(
                f"dlq: queue {queue.name} redrives after {policy.get('maxReceiveCount')} receives "
                f"(< {MAX_RECEIVE_COUNT})"
            )
        if (queue.inputs.get("messageRetentionSeconds") or 0) < DLQ_RETENTION_SECONDS:
            violations.append(f"dlq: queue {queue.name} drops messages after "
                              f"{queue.inputs.get('messageRetentionSeconds')} s without dead-lettering them")
        dlq = queues.get(policy.get("deadLetterTargetArn"))
        if dlq is None or dlq.inputs.get("messageRetentionSeconds") != DLQ_RETENTION_SECONDS:
            violations.append(f"dlq: the dead-letter queue of {queue.name} does not keep messages 14 days")
    for mapping in _of(resources, MAPPING):
        source = mapping.inputs.get("eventSourceArn")
        if source in queues and source not in dlqs and not queues[source].inputs.get("redrivePolicy"):
            violations.append(f"dlq: queue {queues[source].name} is consumed but has no dead-letter queue")
    return violations


def visibility_covers_timeout(resources: Sequence[Declared]) -> list[str]:
    """A consumed queue's visibility timeout is at least 6x its consumer's timeout."""
    queues = _queue_by_arn(resources)
    functions = {key: f for f in _of(resources, FUNCTION) for key in (f.state.get("arn"), f.state.get("name"))}
    violations = []
    for mapping in _of(resources, MAPPING):
        queue = queues.get(mapping.inputs.get("eventSourceArn"))
        function = functions.get(mapping.inputs.get("functionName"))
        if queue is None or function is None:
            continue
        visibility = queue.inputs.get("visibilityTimeoutSeconds", 30)
        if visibility < VISIBILITY_TIMEOUT_FACTOR * function.inputs.get("timeout", 3):
            violations.append(
                f"visibility: queue {queue.name} ({visibility} s) < {VISIBILITY_TIMEOUT_FACTOR} x "
                f"timeout of {function.name} ({function.inputs.get('timeout')} s)"
            )
    return violations


def _states(definition: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every state of a definition, nested Map and Parallel states included."""
    for state in (definition.get("States") or {}).values():
        yield state
        for inner in (state.get("ItemProcessor"), state.get("Iterator"), *(state.get("Branches") or [])):
            if inner:
                yield from _states(inner)


#: A message that is the whole state (or a JSON rendering of it) mails traces and document data.
_WHOLE_STATE = re.compile(r"^\$$|\(\s*\$\s*[,)]|JsonToString\(\s*\$\s*\)")


def notifications_quote_no_state(resources: Sequence[Declared]) -> list[str]:
    """No state machine publishes its whole state (errors with stack traces, documents' metadata) to SNS."""
    violations = []
    for machine in _of(resources, STATE_MACHINE):
        definition = machine.inputs.get("definition")
        body = json.loads(definition) if isinstance(definition, str) else definition or {}
        for state in _states(body):
            if "sns:publish" not in str(state.get("Resource", "")):
                continue
            message = str((state.get("Parameters") or {}).get("Message.$", ""))
            if _WHOLE_STATE.search(message):
                violations.append(f"notification: state machine {machine.name} publishes its whole state ({message})")
    return violations


def _ingestion_bucket_arns(resources: Sequence[Declared]) -> set[str]:
    """ARNs of the buckets whose events start jobs (EventBridge notifications on): where manifests arrive."""
    names = {n.inputs.get("bucket") for n in _of(resources, BUCKET_NOTIFICATION) if n.inputs.get("eventbridge")}
    return {b.state.get("arn") for b in _of(resources, BUCKET) if b.state.get("bucket") in names}


def deletes_only_manifests(resources: Sequence[Declared]) -> list[str]:
    """On the ingestion bucket, ``s3:DeleteObject`` names manifest keys only (``*/_control/manifest.json``)."""
    arns = _ingestion_bucket_arns(resources)
    violations = []
    for resource, statement in statements(resources):
        actions = _as_list(statement.get("Action"))
        if statement.get("Effect") != "Allow" or not any(a in ("s3:DeleteObject", "s3:Delete*", "s3:*", "*")
                                                          for a in actions):
            continue
        for target in _as_list(statement.get("Resource")):
            bucket_arn = str(target).split("/", 1)[0]
            if bucket_arn in arns and not str(target).endswith("/_control/manifest.json"):
                violations.append(f"delete-manifests-only: {resource.name} statement {statement.get('Sid')} "
                                  f"may delete {target}")
    return violations


RULES: tuple[Rule, ...] = (
    bucket_public_access_blocked,
    buckets_tls_only,
    queues_tls_only,
    topics_tls_only,
    encrypted_at_rest,
    no_acls,
    access_logged,
    data_protected,
    tables_have_pitr,
    no_wildcard_actions,
    wildcard_resources_allowlisted,
    kendra_scoped_to_index,
    lambda_runtime,
    log_retention,
    dead_letter_queues,
    visibility_covers_timeout,
    notifications_quote_no_state,
    deletes_only_manifests,
)


#: Rules that judge each resource on its own (the policy pack runs them as resource policies).
RESOURCE_RULES: frozenset[Rule] = frozenset({
    data_protected,
    tables_have_pitr,
    no_wildcard_actions,
    wildcard_resources_allowlisted,
    lambda_runtime,
})


def check(resources: Sequence[Declared]) -> list[str]:
    """Every violation of every rule."""
    return [violation for rule in RULES for violation in rule(resources)]
