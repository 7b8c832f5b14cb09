"""Deploy the Pulumi program into moto (the sandbox's embedded AWS).

The program runs under ``pulumi.runtime.set_mocks`` with :class:`MotoMocks`, whose ``new_resource``
creates each declared resource in moto with the names and attributes the program declares and answers
with moto's real ids / ARNs / URLs, so every Output the program wires (a role ARN into a function, a
function ARN into the state machine definition, a state machine ARN into an EventBridge target)
carries the value moto knows (docs/design.md, "The sandbox").

Usage (the caller owns the mock)::

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        deployment = deploy({"kendraIndexId": "..."}, stack="sfn")
        with lambdas.installed(deployment), eventbridge.installed() as events:
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import re
import threading
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import pulumi
from pulumi.runtime import settings as pulumi_settings

PROJECT = "kendra-ingestion"
_LAYER_ENV = "KENDRA_INGESTION_LAYER"  # infra.packaging.LAYER_ENV: "skip" = reference, do not build
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"

# pulumi's wire marker of a secret value (pulumi.runtime.rpc._special_sig_key / _special_secret_sig)
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


class DeployError(RuntimeError):
    """The program could not be deployed into moto (a resource failed or the program raised)."""


# --------------------------------------------------------------------------------------------------
# What a deploy produced
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceRecord:
    """One resource the program registered: its inputs and the state the mock answered."""

    type: str
    name: str  # Pulumi logical name
    id: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    skipped_reason: str | None = None


@dataclass(frozen=True)
class FunctionInfo:
    """A deployed Lambda function's configuration (as created in moto)."""

    name: str
    arn: str
    handler: str
    environment: Mapping[str, str]
    timeout: int
    memory: int
    role: str
    runtime: str | None
    logical_name: str
    layers_dropped: tuple[str, ...] = ()  # layers not in moto (public layers of other accounts)


@dataclass(frozen=True)
class EventSourceMappingInfo:
    """An event source mapping the program declared (recorded only: moto's ignores partial batch responses)."""

    uuid: str
    event_source_arn: str
    function_name: str
    batch_size: int
    maximum_concurrency: int | None
    function_response_types: tuple[str, ...]
    maximum_batching_window_seconds: int
    enabled: bool
    logical_name: str


@dataclass(frozen=True)
class StateMachineInfo:
    """A state machine as created in moto."""

    name: str
    arn: str
    definition: str
    role_arn: str
    type: str
    logical_name: str


@dataclass(frozen=True)
class RuleInfo:
    """An EventBridge rule and the targets put on it."""

    name: str
    arn: str
    event_bus_name: str
    event_pattern: str | None
    schedule_expression: str | None
    state: str
    targets: tuple[Mapping[str, Any], ...]
    logical_name: str


@dataclass(frozen=True)
class Deployment:
    """The result of :func:`deploy`."""

    stack: str
    config: Mapping[str, object]
    outputs: Mapping[str, Any]
    resources: tuple[ResourceRecord, ...]
    functions: Mapping[str, FunctionInfo]  # function name → info
    event_source_mappings: tuple[EventSourceMappingInfo, ...]
    state_machines: Mapping[str, StateMachineInfo]  # state machine name → info
    rules: Mapping[str, RuleInfo]  # rule name → info
    skipped: tuple[ResourceRecord, ...] = field(default=())

    def function_by_handler(self, handler_module: str) -> FunctionInfo:
        """The function whose handler is ``<handler_module>.<attr>`` (KeyError when none or several)."""
        found = [f for f in self.functions.values() if f.handler.rpartition(".")[0] == handler_module]
        if len(found) != 1:
            raise KeyError(f"{len(found)} functions with handler module {handler_module!r}")
        return found[0]


# --------------------------------------------------------------------------------------------------
# Input helpers (mock inputs: camelCase keys, numbers as floats, secrets wrapped)
# --------------------------------------------------------------------------------------------------


def unwrap_secrets(value: Any) -> Any:
    """Replace pulumi's ``{<sig>: <secret sig>, "value": v}`` wrappers by ``v``, recursively."""
    if isinstance(value, dict):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            return unwrap_secrets(value.get("value"))
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _get(d: Mapping[str, Any] | None, key: str, default: Any = None) -> Any:
    """``d[key]`` by its camelCase name, or its snake_case spelling (map-typed values keep it)."""
    if not d:
        return default
    if key in d and d[key] is not None:
        return d[key]
    snake = _snake(key)
    if snake in d and d[snake] is not None:
        return d[snake]
    return default


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _last(arn_or_name: str, sep: str = ":") -> str:
    return arn_or_name.rsplit(sep, 1)[-1]


def _function_name(name_or_arn: str) -> str:
    if ":function:" in name_or_arn:
        return name_or_arn.split(":function:")[1].split(":")[0]
    return name_or_arn


_PLACEHOLDER_ZIP: bytes | None = None


def _placeholder_zip() -> bytes:
    # moto needs a zip; the code never runs in moto (sandbox.lambdas runs the real handler).
    global _PLACEHOLDER_ZIP
    if _PLACEHOLDER_ZIP is None:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("placeholder.py", "# code runs in-process, see sandbox/lambdas.py\n")
        _PLACEHOLDER_ZIP = buf.getvalue()
    return _PLACEHOLDER_ZIP


# --------------------------------------------------------------------------------------------------
# The mocks
# --------------------------------------------------------------------------------------------------


class _Skip(Exception):
    """The resource is recorded but deliberately not created in moto."""


_Handler = Callable[["MotoMocks", pulumi.runtime.MockResourceArgs, dict[str, Any]], tuple[str, dict[str, Any]]]


class MotoMocks(pulumi.runtime.Mocks):
    """Pulumi mocks that create every supported resource in moto (call inside ``mock_aws``)."""

    def __init__(self, stack: str) -> None:
        self.stack = stack
        self.lock = threading.Lock()
        self.records: list[ResourceRecord] = []
        self.functions: dict[str, FunctionInfo] = {}
        self.event_source_mappings: list[EventSourceMappingInfo] = []
        self.state_machines: dict[str, StateMachineInfo] = {}
        self.rules: dict[str, dict[str, Any]] = {}
        self.errors: list[tuple[str, str, BaseException]] = []
        self._clients: dict[str, Any] = {}
        self._session: Any = None

    # -- infrastructure ----------------------------------------------------------------------------

    def client(self, service: str) -> Any:
        """A boto3 client for moto (call with :attr:`lock` held: client creation is not thread-safe)."""
        if service not in self._clients:
            import boto3

            if self._session is None:
                self._session = boto3.session.Session(region_name=REGION)
            made = self._session.client(service, region_name=REGION)
            _ = made.exceptions  # built lazily and without a lock by botocore: build it before sharing
            self._clients[service] = made
        return self._clients[service]

    def invent_name(
        self,
        logical: str,
        inputs: Mapping[str, Any],
        *,
        key: str = "name",
        max_len: int = 64,
        lower: bool = False,
    ) -> str:
        """The declared name, else ``namePrefix`` + hex, else ``<logical>-<hex>`` (Pulumi's autonaming).

        The hex is derived from stack, type and logical name, so a re-deploy gets the same names.
        """
        explicit = _get(inputs, key)
        if explicit:
            return str(explicit)
        digest = hashlib.sha256(f"{self.stack}/{key}/{logical}".encode()).hexdigest()[:7]
        prefix = _get(inputs, f"{key}Prefix")
        name = f"{prefix}{digest}" if prefix else f"{logical[: max_len - 8]}-{digest}"
        if lower:
            name = re.sub(r"[^a-z0-9.-]", "-", name.lower())
        return name[:max_len]

    # -- pulumi.runtime.Mocks ----------------------------------------------------------------------

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        """Create the resource in moto; answer moto's id and state merged over the inputs."""
        inputs = unwrap_secrets(dict(args.inputs))
        if args.typ.startswith("pulumi:providers:") or not args.custom:
            # Providers and component resources have nothing to create.
            return f"{args.name}-id", inputs
        handler = _HANDLERS.get(args.typ)
        with self.lock:
            try:
                if handler is None:
                    rid, state = f"{args.name}-{uuid.uuid4().hex[:8]}", {}
                    reason = "not created in moto (type not handled by the sandbox)"
                else:
                    rid, state = handler(self, args, inputs)
                    reason = None
            except _Skip as skip:
                rid, state, reason = f"{args.name}-{uuid.uuid4().hex[:8]}", {}, str(skip)
            except Exception as exc:
                self.errors.append((args.typ, args.name, exc))
                raise
            merged = {**inputs, **state}
            self.records.append(ResourceRecord(args.typ, args.name, rid, inputs, merged, reason))
        return rid, merged

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        """Answer the data sources the program uses; anything else gets ``{}`` (as Pulumi mocks do)."""
        token = args.token
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/moto",
                "userId": "AKIAIOSFODNN7EXAMPLE",
                "id": ACCOUNT_ID,
            }
        if token == "aws:index/getRegion:getRegion":
            return {
                "region": REGION,
                "name": REGION,
                "id": REGION,
                "description": "US East (N. Virginia)",
                "endpoint": f"ec2.{REGION}.amazonaws.com",
            }
        if token == "aws:index/getPartition:getPartition":
            return {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "id": "aws",
                "reverseDnsPrefix": "com.amazonaws",
            }
        if token == "aws:iam/getPolicyDocument:getPolicyDocument":
            document = policy_document(unwrap_secrets(dict(args.args)))
            return {
                "json": json.dumps(document, indent=2),
                "minifiedJson": json.dumps(document),
                "id": "policy",
            }
        return {}


def policy_document(args: Mapping[str, Any]) -> dict[str, Any]:
    """Render ``aws.iam.get_policy_document`` arguments as the policy JSON it returns."""
    statements = []
    for st in args.get("statements") or []:
        out: dict[str, Any] = {}
        if st.get("sid"):
            out["Sid"] = st["sid"]
        out["Effect"] = st.get("effect") or "Allow"
        for key, wire in (
            ("actions", "Action"),
            ("notActions", "NotAction"),
            ("resources", "Resource"),
            ("notResources", "NotResource"),
        ):
            values = st.get(key)
            if values:
                out[wire] = values[0] if len(values) == 1 else list(values)
        for key, wire in (("principals", "Principal"), ("notPrincipals", "NotPrincipal")):
            if st.get(key):
                principal: dict[str, Any] = {}
                for p in st[key]:
                    ids = p.get("identifiers") or []
                    principal[p["type"]] = ids[0] if len(ids) == 1 else list(ids)
                out[wire] = "*" if principal == {"*": "*"} else principal
        if st.get("conditions"):
            condition: dict[str, dict[str, Any]] = {}
            for c in st["conditions"]:
                values = c.get("values") or []
                condition.setdefault(c["test"], {})[c["variable"]] = values[0] if len(values) == 1 else values
            out["Condition"] = condition
        statements.append(out)
    return {"Version": args.get("version") or "2012-10-17", "Statement": statements}


# --------------------------------------------------------------------------------------------------
# Per-type creation in moto. Each returns (pulumi id, state fields moto knows).
# --------------------------------------------------------------------------------------------------


def _bucket(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    name = m.invent_name(a.name, i, key="bucket", max_len=63, lower=True)
    s3 = m.client("s3")
    s3.create_bucket(Bucket=name)
    versioning = _get(i, "versioning")
    if versioning and _get(versioning, "enabled"):
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name, {
        "bucket": name,
        "arn": f"arn:aws:s3:::{name}",
        "bucketDomainName": f"{name}.s3.amazonaws.com",
        "bucketRegionalDomainName": f"{name}.s3.{REGION}.amazonaws.com",
        "region": REGION,
        "hostedZoneId": "Z3AQBSTGFYJSTF",
    }


def _bucket_notification(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    bucket = i["bucket"]
    config: dict[str, Any] = {}
    if _get(i, "eventbridge"):
        config["EventBridgeConfiguration"] = {}

    def filters(item: Mapping[str, Any]) -> dict[str, Any]:
        rules = []
        if _get(item, "filterPrefix"):
            rules.append({"Name": "prefix", "Value": _get(item, "filterPrefix")})
        if _get(item, "filterSuffix"):
            rules.append({"Name": "suffix", "Value": _get(item, "filterSuffix")})
        return {"Filter": {"Key": {"FilterRules": rules}}} if rules else {}

    for key, wire, arn_key, arn_wire in (
        ("lambdaFunctions", "LambdaFunctionConfigurations", "lambdaFunctionArn", "LambdaFunctionArn"),
        ("queues", "QueueConfigurations", "queueArn", "QueueArn"),
        ("topics", "TopicConfigurations", "topicArn", "TopicArn"),
    ):
        items = _get(i, key) or []
        if items:
            config[wire] = [
                {
                    **({"Id": _get(it, "id")} if _get(it, "id") else {}),
                    arn_wire: _get(it, arn_key),
                    "Events": list(_get(it, "events") or []),
                    **filters(it),
                }
                for it in items
            ]
    m.client("s3").put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    return bucket, {}


def _bucket_versioning(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    status = _get(_get(i, "versioningConfiguration", {}), "status", "Enabled")
    m.client("s3").put_bucket_versioning(Bucket=i["bucket"], VersioningConfiguration={"Status": status})
    return i["bucket"], {}


def _bucket_policy(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    m.client("s3").put_bucket_policy(Bucket=i["bucket"], Policy=_json_text(i["policy"]))
    return i["bucket"], {}


def _bucket_logging(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    enabled = {"TargetBucket": i["targetBucket"], "TargetPrefix": _get(i, "targetPrefix", "")}
    m.client("s3").put_bucket_logging(Bucket=i["bucket"], BucketLoggingStatus={"LoggingEnabled": enabled})
    return i["bucket"], {}


def _bucket_public_access_block(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    m.client("s3").put_public_access_block(
        Bucket=i["bucket"],
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": bool(_get(i, "blockPublicAcls", False)),
            "IgnorePublicAcls": bool(_get(i, "ignorePublicAcls", False)),
            "BlockPublicPolicy": bool(_get(i, "blockPublicPolicy", False)),
            "RestrictPublicBuckets": bool(_get(i, "restrictPublicBuckets", False)),
        },
    )
    return i["bucket"], {}


def _bucket_encryption(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    rules = []
    for rule in _get(i, "rules") or []:
        default = _get(rule, "applyServerSideEncryptionByDefault") or {}
        by_default = {"SSEAlgorithm": _get(default, "sseAlgorithm", "AES256")}
        if _get(default, "kmsMasterKeyId"):
            by_default["KMSMasterKeyID"] = _get(default, "kmsMasterKeyId")
        out: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": by_default}
        if _get(rule, "bucketKeyEnabled") is not None:
            out["BucketKeyEnabled"] = bool(_get(rule, "bucketKeyEnabled"))
        rules.append(out)
    m.client("s3").put_bucket_encryption(Bucket=i["bucket"], ServerSideEncryptionConfiguration={"Rules": rules})
    return i["bucket"], {}


def _bucket_lifecycle(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    rules = []
    for rule in _get(i, "rules") or []:
        out: dict[str, Any] = {"ID": _get(rule, "id"), "Status": _get(rule, "status", "Enabled")}
        flt = _get(rule, "filter") or {}
        if _get(flt, "and"):
            both = _get(flt, "and")
            out["Filter"] = {"And": {k: v for k, v in (("Prefix", _get(both, "prefix")),) if v is not None}}
        elif _get(flt, "prefix") is not None:
            out["Filter"] = {"Prefix": _get(flt, "prefix")}
        else:
            out["Filter"] = {"Prefix": ""}
        expiration = _get(rule, "expiration")
        if expiration and _get(expiration, "days"):
            out["Expiration"] = {"Days": int(_get(expiration, "days"))}
        abort = _get(rule, "abortIncompleteMultipartUpload")
        if abort and _get(abort, "daysAfterInitiation"):
            out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(_get(abort, "daysAfterInitiation"))}
        noncurrent = _get(rule, "noncurrentVersionExpiration")
        if noncurrent and _get(noncurrent, "noncurrentDays"):
            out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(_get(noncurrent, "noncurrentDays"))}
        rules.append(out)
    m.client("s3").put_bucket_lifecycle_configuration(Bucket=i["bucket"], LifecycleConfiguration={"Rules": rules})
    return i["bucket"], {}


def _bucket_ownership(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    rule = _get(i, "rule") or {}
    m.client("s3").put_bucket_ownership_controls(
        Bucket=i["bucket"],
        OwnershipControls={"Rules": [{"ObjectOwnership": _get(rule, "objectOwnership", "BucketOwnerEnforced")}]},
    )
    return i["bucket"], {}


def _table(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    name = m.invent_name(a.name, i, max_len=255)
    billing = _get(i, "billingMode", "PROVISIONED")
    keys = [{"AttributeName": i["hashKey"], "KeyType": "HASH"}]
    if _get(i, "rangeKey"):
        keys.append({"AttributeName": i["rangeKey"], "KeyType": "RANGE"})

    def throughput(item: Mapping[str, Any]) -> dict[str, Any]:
        if billing == "PAY_PER_REQUEST":
            return {}
        return {
            "ProvisionedThroughput": {
                "ReadCapacityUnits": _int(_get(item, "readCapacity", 1)),
                "WriteCapacityUnits": _int(_get(item, "writeCapacity", 1)),
            }
        }

    def projection(item: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"ProjectionType": _get(item, "projectionType", "ALL")}
        if _get(item, "nonKeyAttributes"):
            out["NonKeyAttributes"] = list(_get(item, "nonKeyAttributes"))
        return out

    kwargs: dict[str, Any] = {
        "TableName": name,
        "KeySchema": keys,
        "AttributeDefinitions": [
            {"AttributeName": attr["name"], "AttributeType": attr["type"]} for attr in _get(i, "attributes") or []
        ],
        "BillingMode": billing,
        **throughput(i),
    }
    gsis = []
    for g in _get(i, "globalSecondaryIndexes") or []:
        if _get(g, "keySchemas"):
            # pulumi-aws 7 spelling (key_schemas), which replaces hash_key / range_key
            schema = [
                {"AttributeName": _get(k, "attributeName"), "KeyType": _get(k, "keyType")}
                for k in _get(g, "keySchemas")
            ]
        else:
            schema = [{"AttributeName": _get(g, "hashKey"), "KeyType": "HASH"}]
            if _get(g, "rangeKey"):
                schema.append({"AttributeName": _get(g, "rangeKey"), "KeyType": "RANGE"})
        gsis.append({"IndexName": g["name"], "KeySchema": schema, "Projection": projection(g), **throughput(g)})
    if gsis:
        kwargs["GlobalSecondaryIndexes"] = gsis
    lsis = [
        {
            "IndexName": lsi["name"],
            "KeySchema": [*keys[:1], {"AttributeName": _get(lsi, "rangeKey"), "KeyType": "RANGE"}],
            "Projection": projection(lsi),
        }
        for lsi in _get(i, "localSecondaryIndexes") or []
    ]
    if lsis:
        kwargs["LocalSecondaryIndexes"] = lsis
    if _get(i, "streamEnabled"):
        kwargs["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": _get(i, "streamViewType", "NEW_AND_OLD_IMAGES"),
        }
    sse = _get(i, "serverSideEncryption")
    if sse and _get(sse, "enabled"):
        spec: dict[str, Any] = {"Enabled": True, "SSEType": "KMS"}
        if _get(sse, "kmsKeyArn"):
            spec["KMSMasterKeyId"] = _get(sse, "kmsKeyArn")
        kwargs["SSESpecification"] = spec
    ddb = m.client("dynamodb")
    desc = ddb.create_table(**kwargs)["TableDescription"]
    ttl = _get(i, "ttl")
    if ttl and _get(ttl, "enabled") and _get(ttl, "attributeName"):
        ddb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": _get(ttl, "attributeName")},
        )
    pitr = _get(i, "pointInTimeRecovery")
    if pitr and _get(pitr, "enabled"):
        ddb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    state = {"name": name, "arn": desc["TableArn"]}
    if desc.get("LatestStreamArn"):
        state["streamArn"] = desc["LatestStreamArn"]
    return name, state


def _topic(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    fifo = bool(_get(i, "fifoTopic"))
    name = m.invent_name(a.name, i, max_len=256)
    if fifo and not name.endswith(".fifo"):
        name = f"{name[:251]}.fifo"
    attributes: dict[str, str] = {}
    if fifo:
        attributes["FifoTopic"] = "true"
        if _get(i, "contentBasedDeduplication"):
            attributes["ContentBasedDeduplication"] = "true"
    if _get(i, "kmsMasterKeyId"):
        attributes["KmsMasterKeyId"] = str(_get(i, "kmsMasterKeyId"))
    if _get(i, "policy"):
        attributes["Policy"] = _json_text(_get(i, "policy")) or ""
    if _get(i, "displayName"):
        attributes["DisplayName"] = str(_get(i, "displayName"))
    arn = m.client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
    return arn, {"name": name, "arn": arn, "owner": ACCOUNT_ID}


def _topic_policy(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    m.client("sns").set_topic_attributes(
        TopicArn=i["arn"], AttributeName="Policy", AttributeValue=_json_text(i["policy"])
    )
    return i["arn"], {}


def _subscription(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    protocol = _get(i, "protocol")
    if protocol in ("email", "email-json"):
        # Nobody confirms an email subscription in the sandbox.
        raise _Skip(f"{protocol} subscription not created in the sandbox")
    attributes: dict[str, str] = {}
    if _get(i, "rawMessageDelivery") is not None:
        attributes["RawMessageDelivery"] = "true" if _get(i, "rawMessageDelivery") else "false"
    if _get(i, "filterPolicy"):
        attributes["FilterPolicy"] = _json_text(_get(i, "filterPolicy")) or ""
    if _get(i, "redrivePolicy"):
        attributes["RedrivePolicy"] = _json_text(_get(i, "redrivePolicy")) or ""
    arn = m.client("sns").subscribe(
        TopicArn=i["topic"],
        Protocol=protocol,
        Endpoint=i["endpoint"],
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    return arn, {"arn": arn}


def _queue(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    fifo = bool(_get(i, "fifoQueue"))
    name = m.invent_name(a.name, i, max_len=80)
    if fifo and not name.endswith(".fifo"):
        name = f"{name[:75]}.fifo"
    attributes: dict[str, str] = {}
    if fifo:
        attributes["FifoQueue"] = "true"
    for key, wire in (
        ("visibilityTimeoutSeconds", "VisibilityTimeout"),
        ("messageRetentionSeconds", "MessageRetentionPeriod"),
        ("delaySeconds", "DelaySeconds"),
        ("maxMessageSize", "MaximumMessageSize"),
        ("receiveWaitTimeSeconds", "ReceiveMessageWaitTimeSeconds"),
        ("kmsDataKeyReusePeriodSeconds", "KmsDataKeyReusePeriodSeconds"),
    ):
        if _get(i, key) is not None:
            attributes[wire] = str(int(_get(i, key)))
    for key, wire in (
        ("contentBasedDeduplication", "ContentBasedDeduplication"),
        ("sqsManagedSseEnabled", "SqsManagedSseEnabled"),
    ):
        if _get(i, key) is not None and (fifo or key != "contentBasedDeduplication"):
            attributes[wire] = "true" if _get(i, key) else "false"
    for key, wire in (
        ("kmsMasterKeyId", "KmsMasterKeyId"),
        ("deduplicationScope", "DeduplicationScope"),
        ("fifoThroughputLimit", "FifoThroughputLimit"),
    ):
        if _get(i, key):
            attributes[wire] = str(_get(i, key))
    for key, wire in (
        ("redrivePolicy", "RedrivePolicy"),
        ("redriveAllowPolicy", "RedriveAllowPolicy"),
        ("policy", "Policy"),
    ):
        if _get(i, key):
            attributes[wire] = _json_text(_get(i, key)) or ""
    sqs = m.client("sqs")
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, {"name": name, "arn": arn, "url": url}


def _queue_policy(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    m.client("sqs").set_queue_attributes(QueueUrl=i["queueUrl"], Attributes={"Policy": _json_text(i["policy"])})
    return i["queueUrl"], {}


def _role(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    name = m.invent_name(a.name, i, max_len=64)
    kwargs: dict[str, Any] = {
        "RoleName": name,
        "AssumeRolePolicyDocument": _json_text(i["assumeRolePolicy"]),
        "Path": _get(i, "path", "/"),
    }
    if _get(i, "description"):
        kwargs["Description"] = _get(i, "description")
    if _get(i, "maxSessionDuration"):
        kwargs["MaxSessionDuration"] = int(_get(i, "maxSessionDuration"))
    iam = m.client("iam")
    role = iam.create_role(**kwargs)["Role"]
    for policy_arn in _get(i, "managedPolicyArns") or []:
        _attach(m, name, policy_arn)
    return name, {
        "name": name,
        "arn": role["Arn"],
        "uniqueId": role["RoleId"],
        "createDate": str(role["CreateDate"]),
    }


def _attach(m: MotoMocks, role: str, policy_arn: str) -> None:
    m.client("iam").attach_role_policy(RoleName=role, PolicyArn=policy_arn)


def _role_policy(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    role = _last(i["role"], "/")
    name = m.invent_name(a.name, i, max_len=128)
    m.client("iam").put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=_json_text(i["policy"]))
    return f"{role}:{name}", {"name": name, "role": role}


def _policy(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    name = m.invent_name(a.name, i, max_len=128)
    kwargs: dict[str, Any] = {
        "PolicyName": name,
        "PolicyDocument": _json_text(i["policy"]),
        "Path": _get(i, "path", "/"),
    }
    if _get(i, "description"):
        kwargs["Description"] = _get(i, "description")
    policy = m.client("iam").create_policy(**kwargs)["Policy"]
    return policy["Arn"], {"name": name, "arn": policy["Arn"], "policyId": policy["PolicyId"]}


def _role_policy_attachment(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    role = _last(i["role"], "/")
    _attach(m, role, i["policyArn"])
    return f"{role}-{hashlib.sha256(i['policyArn'].encode()).hexdigest()[:8]}", {}


def _layer_version(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    kwargs: dict[str, Any] = {"LayerName": i["layerName"], "Content": {"ZipFile": _placeholder_zip()}}
    if _get(i, "compatibleRuntimes"):
        kwargs["CompatibleRuntimes"] = list(_get(i, "compatibleRuntimes"))
    if _get(i, "compatibleArchitectures"):
        kwargs["CompatibleArchitectures"] = list(_get(i, "compatibleArchitectures"))
    out = m.client("lambda").publish_layer_version(**kwargs)
    return out["LayerVersionArn"], {
        "arn": out["LayerVersionArn"],
        "layerArn": out["LayerArn"],
        "version": str(out["Version"]),
    }


def _function(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    name = m.invent_name(a.name, i, max_len=64)
    environment = {str(k): str(v) for k, v in (_get(_get(i, "environment", {}), "variables") or {}).items()}
    timeout = int(_get(i, "timeout", 3))
    memory = int(_get(i, "memorySize", 128))
    lam = m.client("lambda")
    # Layers of other accounts (e.g. the public Powertools layer) do not exist in moto.
    layers = list(_get(i, "layers") or [])
    local_layers = [arn for arn in layers if arn.split(":")[4] == ACCOUNT_ID]
    dropped = tuple(arn for arn in layers if arn not in local_layers)
    kwargs: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": _get(i, "runtime", "python3.13"),
        "Role": i["role"],
        "Handler": i["handler"],
        "Code": {"ZipFile": _placeholder_zip()},
        "Timeout": timeout,
        "MemorySize": memory,
        "Environment": {"Variables": environment},
        "Publish": bool(_get(i, "publish", False)),
    }
    if _get(i, "architectures"):
        kwargs["Architectures"] = list(_get(i, "architectures"))
    if _get(i, "description"):
        kwargs["Description"] = _get(i, "description")
    if local_layers:
        kwargs["Layers"] = local_layers
    tracing = _get(i, "tracingConfig")
    if tracing and _get(tracing, "mode"):
        kwargs["TracingConfig"] = {"Mode": _get(tracing, "mode")}
    dlq = _get(i, "deadLetterConfig")
    if dlq and _get(dlq, "targetArn"):
        kwargs["DeadLetterConfig"] = {"TargetArn": _get(dlq, "targetArn")}
    out = lam.create_function(**kwargs)
    reserved = _get(i, "reservedConcurrentExecutions")
    if reserved is not None and int(reserved) >= 0:
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=int(reserved))
    arn = out["FunctionArn"]
    m.functions[name] = FunctionInfo(
        name=name,
        arn=arn,
        handler=i["handler"],
        environment=environment,
        timeout=timeout,
        memory=memory,
        role=i["role"],
        runtime=_get(i, "runtime"),
        logical_name=a.name,
        layers_dropped=dropped,
    )
    return name, {
        "name": name,
        "arn": arn,
        "invokeArn": f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{arn}/invocations",
        "qualifiedArn": f"{arn}:$LATEST",
        "qualifiedInvokeArn": (
            f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{arn}:$LATEST/invocations"
        ),
        "version": out.get("Version", "$LATEST"),
        "lastModified": out.get("LastModified"),
        "sourceCodeHash": out.get("CodeSha256"),
    }


def _permission(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    statement_id = m.invent_name(a.name, i, key="statementId", max_len=100)
    kwargs: dict[str, Any] = {
        "FunctionName": _function_name(i["function"]),
        "StatementId": statement_id,
        "Action": i["action"],
        "Principal": i["principal"],
    }
    if _get(i, "sourceArn"):
        kwargs["SourceArn"] = _get(i, "sourceArn")
    if _get(i, "sourceAccount"):
        kwargs["SourceAccount"] = _get(i, "sourceAccount")
    m.client("lambda").add_permission(**kwargs)
    return statement_id, {"statementId": statement_id}


def _event_source_mapping(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    # Recorded only: moto's SQS mapping invokes one record at a time and ignores batchItemFailures
    # (moto 5.2.x); the sandbox polls the queues itself from this record.
    function = _function_name(i["functionName"])
    ident = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{m.stack}/esm/{a.name}"))
    scaling = _get(i, "scalingConfig") or {}
    info = EventSourceMappingInfo(
        uuid=ident,
        event_source_arn=i["eventSourceArn"],
        function_name=function,
        batch_size=int(_get(i, "batchSize", 10)),
        maximum_concurrency=_int(_get(scaling, "maximumConcurrency")),
        function_response_types=tuple(_get(i, "functionResponseTypes") or ()),
        maximum_batching_window_seconds=int(_get(i, "maximumBatchingWindowInSeconds", 0)),
        enabled=bool(_get(i, "enabled", True)),
        logical_name=a.name,
    )
    m.event_source_mappings.append(info)
    function_arn = m.functions[function].arn if function in m.functions else i["functionName"]
    return ident, {
        "uuid": ident,
        "functionArn": function_arn,
        "state": "Enabled" if info.enabled else "Disabled",
        "arn": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:event-source-mapping:{ident}",
    }


def _state_machine(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    name = m.invent_name(a.name, i, max_len=80)
    definition = _json_text(i["definition"]) or ""
    sm_type = _get(i, "type", "STANDARD")
    kwargs: dict[str, Any] = {
        "name": name,
        "definition": definition,
        "roleArn": i["roleArn"],
        "type": sm_type,
    }
    logging_config = _get(i, "loggingConfiguration")
    if logging_config and _get(logging_config, "level"):
        kwargs["loggingConfiguration"] = {
            "level": _get(logging_config, "level"),
            "includeExecutionData": bool(_get(logging_config, "includeExecutionData", False)),
        }
        if _get(logging_config, "logDestination"):
            kwargs["loggingConfiguration"]["destinations"] = [
                {"cloudWatchLogsLogGroup": {"logGroupArn": _get(logging_config, "logDestination")}}
            ]
    tracing = _get(i, "tracingConfiguration")
    if tracing and _get(tracing, "enabled") is not None:
        kwargs["tracingConfiguration"] = {"enabled": bool(_get(tracing, "enabled"))}
    out = m.client("stepfunctions").create_state_machine(**kwargs)
    arn = out["stateMachineArn"]
    m.state_machines[name] = StateMachineInfo(name, arn, definition, i["roleArn"], sm_type, a.name)
    return arn, {
        "name": name,
        "arn": arn,
        "status": "ACTIVE",
        "creationDate": str(out["creationDate"]),
        "stateMachineVersionArn": "",
        "revisionId": "",
    }


def _rule(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    name = m.invent_name(a.name, i, max_len=64)
    bus = _last(_get(i, "eventBusName", "default"), "/")
    kwargs: dict[str, Any] = {"Name": name, "State": _get(i, "state", "ENABLED"), "EventBusName": bus}
    pattern = _json_text(_get(i, "eventPattern"))
    if pattern:
        kwargs["EventPattern"] = pattern
    if _get(i, "scheduleExpression"):
        kwargs["ScheduleExpression"] = _get(i, "scheduleExpression")
    if _get(i, "description"):
        kwargs["Description"] = _get(i, "description")
    if _get(i, "roleArn"):
        kwargs["RoleArn"] = _get(i, "roleArn")
    arn = m.client("events").put_rule(**kwargs)["RuleArn"]
    m.rules[name] = {
        "name": name,
        "arn": arn,
        "event_bus_name": bus,
        "event_pattern": pattern,
        "schedule_expression": kwargs.get("ScheduleExpression"),
        "state": kwargs["State"],
        "targets": [],
        "logical_name": a.name,
    }
    rid = name if bus == "default" else f"{bus}/{name}"
    return rid, {"name": name, "arn": arn}


def _target(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    rule = _last(i["rule"], "/")
    bus = _last(_get(i, "eventBusName", "default"), "/")
    target_id = _get(i, "targetId") or m.invent_name(a.name, i, key="targetId", max_len=64)
    target: dict[str, Any] = {"Id": target_id, "Arn": i["arn"]}
    if _get(i, "roleArn"):
        target["RoleArn"] = _get(i, "roleArn")
    if _get(i, "input") is not None:
        target["Input"] = _get(i, "input")
    if _get(i, "inputPath"):
        target["InputPath"] = _get(i, "inputPath")
    transformer = _get(i, "inputTransformer")
    if transformer:
        target["InputTransformer"] = {"InputTemplate": _get(transformer, "inputTemplate")}
        if _get(transformer, "inputPathsMap"):
            target["InputTransformer"]["InputPathsMap"] = dict(_get(transformer, "inputPathsMap"))
    sqs = _get(i, "sqsTarget")
    if sqs and _get(sqs, "messageGroupId"):
        target["SqsParameters"] = {"MessageGroupId": _get(sqs, "messageGroupId")}
    retry = _get(i, "retryPolicy")
    if retry:
        target["RetryPolicy"] = {
            k: int(v)
            for k, v in (
                ("MaximumRetryAttempts", _get(retry, "maximumRetryAttempts")),
                ("MaximumEventAgeInSeconds", _get(retry, "maximumEventAgeInSeconds")),
            )
            if v is not None
        }
    dlq = _get(i, "deadLetterConfig")
    if dlq and _get(dlq, "arn"):
        target["DeadLetterConfig"] = {"Arn": _get(dlq, "arn")}
    result = m.client("events").put_targets(Rule=rule, EventBusName=bus, Targets=[target])
    if result.get("FailedEntryCount"):
        raise DeployError(f"put_targets failed for {a.name}: {result['FailedEntries']}")
    if rule in m.rules:
        m.rules[rule]["targets"].append(target)
    return f"{rule}-{target_id}", {"targetId": target_id}


def _dashboard(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    name = m.invent_name(a.name, i, key="dashboardName", max_len=255)
    body = _json_text(i["dashboardBody"])
    m.client("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=body)
    arn = f"arn:aws:cloudwatch::{ACCOUNT_ID}:dashboard/{name}"
    return name, {"dashboardName": name, "dashboardArn": arn}


def _log_group(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    name = m.invent_name(a.name, i, max_len=512)
    logs = m.client("logs")
    kwargs: dict[str, Any] = {"logGroupName": name}
    if _get(i, "kmsKeyId"):
        kwargs["kmsKeyId"] = _get(i, "kmsKeyId")
    # moto creates a function's /aws/lambda/<name> group itself when the function is first used.
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(**kwargs)
    if _get(i, "retentionInDays"):
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(_get(i, "retentionInDays")))
    return name, {"name": name, "arn": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}"}


def _kms_key(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    kms = m.client("kms")
    kwargs: dict[str, Any] = {}
    if _get(i, "description"):
        kwargs["Description"] = _get(i, "description")
    if _get(i, "policy"):
        kwargs["Policy"] = _json_text(_get(i, "policy"))
    if _get(i, "keyUsage"):
        kwargs["KeyUsage"] = _get(i, "keyUsage")
    spec = _get(i, "customerMasterKeySpec")
    if spec:
        kwargs["KeySpec"] = spec
    meta = kms.create_key(**kwargs)["KeyMetadata"]
    if _get(i, "enableKeyRotation"):
        kms.enable_key_rotation(KeyId=meta["KeyId"])
    return meta["KeyId"], {"arn": meta["Arn"], "keyId": meta["KeyId"]}


def _kms_alias(m: MotoMocks, a: Any, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    name = m.invent_name(a.name, i, max_len=256)
    m.client("kms").create_alias(AliasName=name, TargetKeyId=i["targetKeyId"])
    return name, {"name": name, "arn": f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:{name}"}


_HANDLERS: dict[str, _Handler] = {
    "aws:s3/bucket:Bucket": _bucket,
    "aws:s3/bucketV2:BucketV2": _bucket,
    "aws:s3/bucketNotification:BucketNotification": _bucket_notification,
    "aws:s3/bucketVersioning:BucketVersioning": _bucket_versioning,
    "aws:s3/bucketVersioningV2:BucketVersioningV2": _bucket_versioning,
    "aws:s3/bucketPolicy:BucketPolicy": _bucket_policy,
    "aws:s3/bucketLogging:BucketLogging": _bucket_logging,
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": _bucket_public_access_block,
    ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"): _bucket_encryption,
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": _bucket_ownership,
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": _bucket_lifecycle,
    "aws:dynamodb/table:Table": _table,
    "aws:sns/topic:Topic": _topic,
    "aws:sns/topicPolicy:TopicPolicy": _topic_policy,
    "aws:sns/topicSubscription:TopicSubscription": _subscription,
    "aws:sqs/queue:Queue": _queue,
    "aws:sqs/queuePolicy:QueuePolicy": _queue_policy,
    "aws:iam/role:Role": _role,
    "aws:iam/rolePolicy:RolePolicy": _role_policy,
    "aws:iam/policy:Policy": _policy,
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": _role_policy_attachment,
    "aws:lambda/layerVersion:LayerVersion": _layer_version,
    "aws:lambda/function:Function": _function,
    "aws:lambda/permission:Permission": _permission,
    "aws:lambda/eventSourceMapping:EventSourceMapping": _event_source_mapping,
    "aws:sfn/stateMachine:StateMachine": _state_machine,
    "aws:cloudwatch/eventRule:EventRule": _rule,
    "aws:cloudwatch/eventTarget:EventTarget": _target,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:cloudwatch/dashboard:Dashboard": _dashboard,
    "aws:kms/key:Key": _kms_key,
    "aws:kms/alias:Alias": _kms_alias,
}


# --------------------------------------------------------------------------------------------------
# Running the program
# --------------------------------------------------------------------------------------------------


def _config_values(config: Mapping[str, object]) -> dict[str, str]:
    """Stack config as Pulumi stores it: namespaced keys, strings, structured values as JSON."""
    out: dict[str, str] = {}
    for key, value in config.items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(value, str):
            out[full] = value
        else:
            out[full] = json.dumps(value)
    return out


def run_program(
    program: Callable[[], None], mocks: pulumi.runtime.Mocks, *, stack: str, config: Mapping[str, object]
) -> dict[str, Any]:
    """Run ``program`` under ``mocks`` (preview=False); wait for every registration; return stack outputs.

    Does what ``pulumi.runtime.test`` does internally, on a fresh event loop and fresh runtime
    settings (``set_mocks`` at import time in several places breaks; a Config made before
    ``set_mocks(project=...)`` binds the wrong namespace).
    """
    from pulumi.runtime.settings import SETTINGS
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        pulumi_settings.reset_options()
        pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False)
        pulumi.runtime.set_all_config(_config_values(config))
        SETTINGS.rpc_manager.clear()
        SETTINGS.outputs.clear()
        outputs: dict[str, Any] = {}

        def body() -> None:
            program()
            root = pulumi.runtime.get_root_resource()
            exported = dict(getattr(root, "outputs", {}) or {})
            outputs.update(_sync_await(pulumi.Output.from_input(exported).future()) or {})

        # The sandbox never runs the code archive; do not build the arm64 dependency layer (pip).
        with mock.patch.dict(os.environ, {_LAYER_ENV: "skip"}):
            _sync_await(run_pulumi_func(body))
        return outputs
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def _quiet_abandoned_futures() -> None:
    """After a failed deploy, drop the flood of "Future exception was never retrieved" (harmless).

    Every registration that depended on the failed resource fails too; their futures are never
    awaited. The loop is abandoned, so its handler only ever sees those; anything else still prints.
    """
    with contextlib.suppress(RuntimeError):
        loop = asyncio.get_event_loop()

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            if str(context.get("message", "")).startswith("Future exception was never retrieved"):
                return
            loop.default_exception_handler(context)

        loop.set_exception_handler(handler)


def _default_program() -> Callable[[], None]:
    from infra.program import program

    return program


def deploy(
    config: Mapping[str, object],
    *,
    stack: str,
    program: Callable[[], None] | None = None,
) -> Deployment:
    """Deploy the Pulumi program into the active moto mock; return what was created.

    ``config`` keys are the stack config keys (README, "Configuration") without the ``kendra-ingestion:``
    namespace (namespaced keys are taken as is). ``program`` defaults to ``infra.program.program``.
    Call inside ``moto.mock_aws(config={"stepfunctions": {"execute_state_machine": True}})``.
    Raises :class:`DeployError` when a resource could not be created or the program failed.
    """
    mocks = MotoMocks(stack)
    try:
        try:
            from infra.testing import deploy_with_mocks
        except ImportError:  # infra's runner not present: run the program the same way ourselves
            outputs = run_program(program or _default_program(), mocks, stack=stack, config=config)
        else:
            outputs = dict(deploy_with_mocks(config, stack, mocks=mocks, program=program, project=PROJECT).outputs)
    except Exception as exc:
        _quiet_abandoned_futures()
        if mocks.errors:
            typ, name, first = mocks.errors[0]
            raise DeployError(f"creating {typ} {name!r} in moto failed: {type(first).__name__}: {first}") from first
        raise DeployError(f"the Pulumi program failed: {type(exc).__name__}: {exc}") from exc
    if mocks.errors:
        typ, name, first = mocks.errors[0]
        raise DeployError(f"creating {typ} {name!r} in moto failed: {type(first).__name__}: {first}") from first
    rules = {
        name: RuleInfo(
            name=r["name"],
            arn=r["arn"],
            event_bus_name=r["event_bus_name"],
            event_pattern=r["event_pattern"],
            schedule_expression=r["schedule_expression"],
            state=r["state"],
            targets=tuple(r["targets"]),
            logical_name=r["logical_name"],
        )
        for name, r in mocks.rules.items()
    }
    return Deployment(
        stack=stack,
        config=dict(config),
        outputs=outputs,
        resources=tuple(mocks.records),
        functions=dict(mocks.functions),
        event_source_mappings=tuple(mocks.event_source_mappings),
        state_machines=dict(mocks.state_machines),
        rules=rules,
        skipped=tuple(r for r in mocks.records if r.skipped_reason),
    )


__all__ = [
    "DeployError",
    "Deployment",
    "EventSourceMappingInfo",
    "FunctionInfo",
    "MotoMocks",
    "ResourceRecord",
    "RuleInfo",
    "StateMachineInfo",
    "deploy",
    "policy_document",
    "run_program",
    "unwrap_secrets",
]
