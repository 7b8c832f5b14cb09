"""IAM from real calls: record what each in-process Lambda calls on AWS, and check it against its role.

Three parts:

- :func:`recording` (a context manager the :class:`sandbox.run.Sandbox` enters with
  ``SandboxOptions(record_calls=True)``) records every boto3 API call a deployed function makes while
  it runs, as an :class:`AwsCall` (function name, service, operation and the resource it targets).
- :func:`iam_requests` maps a call to the IAM requests AWS authorizes for it: ``(action, resource ARN)``
  pairs (``ListObjectsV2`` is ``s3:ListBucket`` on the bucket, ``TransactWriteItems`` is the item-level
  action of each item, ``BatchPutDocument`` with a ``RoleArn`` also needs ``iam:PassRole`` on it, ...).
- :func:`role_documents` reads a role's policy documents from a :class:`sandbox.deploy.Deployment`
  (as the program declared them), and :func:`allowed` / :func:`grants` evaluate them.

Attribution. A call is recorded when it is made on a *function client* while an invocation runs on the
calling thread. The running function is the one whose environment the runtime applied to the thread
(:func:`sandbox.lambdas.current_function_name`; threads a handler starts inherit it). A client is a
function client when the innermost project frame that created it is code under the runtime's code
directories (``functions/``), not the sandbox's or the tests' own: so the sandbox's S3 client the Kendra
emulator reads ``S3Path`` documents with (inside a handler's ``BatchPutDocument``) is not charged to the
handler, and neither are the Step Functions interpreter's clients. A function client used outside any
invocation is kept in :attr:`RecordedCalls.unattributed` (callers assert it stays empty).

Calls an AWS service makes *with a function's role* are the function's too: Lambda's SQS event source
mapping receives and deletes the queue's messages as the function's execution role. The sandbox's
mapping (:mod:`sandbox.sqs`) makes those calls on a client it hands to :func:`charge_to`; they are
recorded with the function's name and ``via="event source mapping"``.

Example::

    with Sandbox(SandboxOptions(option="sfn", record_calls=True)) as box:
        box.wait([box.submit(Path("sample/job"))])
        for call in box.aws_calls:
            print(call.function, call.service, call.operation, call.resource)
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox import lambdas

if TYPE_CHECKING:
    from sandbox.deploy import Deployment

ACCOUNT_ID = lambdas.ACCOUNT_ID
REGION = lambdas.REGION
_PARAMS_KEY = "sandbox_iam_recorder_params"
_CALL_KEY = "sandbox_iam_recorder_call"


# --------------------------------------------------------------------------------------------------
# Recording
# --------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class AwsCall:
    """One boto3 API call a function made: ``target`` holds the identifiers of what it acts on.

    ``error`` is filled in when the answer comes back: the error code (``NoSuchKey``,
    ``ConditionalCheckFailedException``, ...) or the exception a transport failure raised; None on success.
    """

    function: str | None  # the deployed function's name (None: outside any invocation)
    service: str  # botocore service name: s3, dynamodb, kendra, sns, sqs, lambda, stepfunctions, ...
    operation: str  # API operation name: GetObject, TransactWriteItems, BatchPutDocument, ...
    target: Mapping[str, Any]
    error: str | None = None
    #: None: the function's code made the call; else the service that made it with the function's role.
    via: str | None = None

    @property
    def resource(self) -> str:
        """What the call targets, readably: ``bucket/key``, a table, a queue URL, a topic ARN, ..."""
        t = self.target
        if self.service == "s3":
            return f"{t.get('bucket', '')}/{t['key']}" if t.get("key") is not None else str(t.get("bucket", ""))
        if self.service == "dynamodb":
            return ",".join(sorted({table for _, table in t.get("items", ())}))
        for name in ("index_id", "queue_url", "topic_arn", "function", "arn"):
            if t.get(name):
                return str(t[name])
        return ""


class RecordedCalls(list[AwsCall]):
    """The calls recorded, in order; :attr:`unattributed`: function-client calls outside any invocation."""

    def __init__(self) -> None:
        super().__init__()
        self.unattributed: list[AwsCall] = []
        self.lock = threading.Lock()


def _dynamodb_target(operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``items``: (operation kind, table) pairs, one per item for the batch and transaction operations."""
    if operation in {"BatchGetItem", "BatchWriteItem"}:
        return {"items": tuple((operation, table) for table in params.get("RequestItems") or {})}
    if operation in {"TransactWriteItems", "TransactGetItems"}:
        items = []
        for item in params.get("TransactItems") or []:
            for kind, body in item.items():  # exactly one of Put/Update/Delete/ConditionCheck/Get
                items.append((kind, body.get("TableName", "")))
        return {"items": tuple(items)}
    target: dict[str, Any] = {"items": ((operation, params.get("TableName", "")),)}
    if params.get("IndexName"):
        target["index_name"] = params["IndexName"]
    return target


def call_target(service: str, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The identifiers of what a call acts on (never document bodies)."""
    p = params
    if service == "s3":
        target: dict[str, Any] = {"bucket": p.get("Bucket"), "key": p.get("Key")}
        if p.get("VersionId"):
            target["version_id"] = p["VersionId"]
        if operation == "DeleteObjects":
            target["keys"] = tuple(o.get("Key") for o in (p.get("Delete") or {}).get("Objects") or [])
        if p.get("CopySource"):
            source = p["CopySource"]
            target["copy_source"] = (
                f"{source['Bucket']}/{source['Key']}" if isinstance(source, Mapping) else str(source).lstrip("/")
            )
        return target
    if service == "dynamodb":
        return _dynamodb_target(operation, p)
    if service == "kendra":
        index_id = p.get("Id") if operation == "DescribeIndex" else p.get("IndexId")
        target = {"index_id": index_id}
        if operation != "DescribeIndex" and p.get("Id"):
            target["data_source_id"] = p["Id"]
        if p.get("RoleArn"):
            target["role_arn"] = p["RoleArn"]
        documents = p.get("Documents") or []
        target["s3_documents"] = sum(1 for d in documents if d.get("S3Path"))
        return target
    if service == "sns":
        return {"topic_arn": p.get("TopicArn") or p.get("TargetArn")}
    if service == "sqs":
        return {"queue_url": p.get("QueueUrl"), "queue_name": p.get("QueueName")}
    if service == "lambda":
        return {"function": p.get("FunctionName"), "qualifier": p.get("Qualifier")}
    if service == "stepfunctions":
        return {"arn": p.get("stateMachineArn") or p.get("executionArn")}
    if service == "kms":
        return {"arn": p.get("KeyId")}
    return {"parameters": tuple(sorted(p))}


@cache
def _classify(filename: str, code_dirs: tuple[Path, ...], root: Path) -> str | None:
    """``function`` (code under a code dir), ``project`` (other repository code) or None (libraries)."""
    if filename.startswith("<"):  # <frozen importlib._bootstrap>, <string>: not a file
        return None
    try:
        path = Path(filename).resolve()
    except (OSError, ValueError):
        return None
    if any(path.is_relative_to(d) for d in code_dirs):
        return "function"
    if path.is_relative_to(root) and not any(part.startswith(".") for part in path.relative_to(root).parts):
        return "project"
    return None


#: While :func:`recording` is active: attaches its recording handlers to a client (see :func:`charge_to`).
_attach: Any = None


def charge_to(client: Any, function_name: str, *, via: str) -> Any:
    """Record every call made on ``client`` as ``function_name``'s, made by ``via`` with its role.

    For the calls an AWS service makes with a function's execution role (``via="event source mapping"``:
    Lambda receiving and deleting SQS messages for the function). Does nothing unless :func:`recording`
    is active; returns ``client``.
    """
    if _attach is not None:
        _attach(client, function_name, via)
    return client


def _created_by_function_code(code_dirs: tuple[Path, ...], root: Path) -> bool:
    frame = sys._getframe(1)
    while frame is not None:
        # Wrappers of create_client (this module's, the Kendra emulator's, run.py's) decide nothing.
        kind = None if "create_client" in frame.f_code.co_name else _classify(frame.f_code.co_filename, code_dirs, root)
        if kind is not None:
            return kind == "function"
        frame = frame.f_back  # type: ignore[assignment]
    return False


@contextmanager
def recording(
    code_dirs: Iterable[Path] = (lambdas.FUNCTIONS_DIR,), *, root: Path = lambdas.REPO_ROOT
) -> Iterator[RecordedCalls]:
    """Record every API call function code makes inside an in-process invocation (see the module doc).

    Hooks ``botocore.client.ClientCreator.create_client``: clients created while active, by function
    code, get two handlers: ``before-parameter-build`` keeps the API parameters (``before-call`` only
    sees the serialized request), ``before-call`` records the call (once per API call, not per retry).
    Enter it before the functions create their clients (the Sandbox resets their cache after start).
    """
    import botocore.client

    calls = RecordedCalls()
    dirs = tuple(Path(d).resolve() for d in code_dirs)
    original = botocore.client.ClientCreator.create_client

    def keep_params(params: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
        context[_PARAMS_KEY] = params

    active = threading.Event()  # cleared on exit: clients outlive the recording (cached, or a poller's)
    active.set()

    def recorder(function: str | None, via: str | None) -> Any:
        def record(model: Any, context: dict[str, Any], **kwargs: Any) -> None:
            if not active.is_set():
                return
            service = model.service_model.service_name
            params = context.get(_PARAMS_KEY) or {}
            call = AwsCall(
                function=function or lambdas.current_function_name(),
                service=service,
                operation=model.name,
                target=call_target(service, model.name, params),
                via=via,
            )
            context[_CALL_KEY] = call
            with calls.lock:
                (calls if call.function else calls.unattributed).append(call)

        return record

    def answered(http_response: Any, parsed: Any, context: dict[str, Any], **kwargs: Any) -> None:
        call = context.get(_CALL_KEY)
        if call is not None and getattr(http_response, "status_code", 200) >= 300:
            call.error = str((parsed or {}).get("Error", {}).get("Code") or http_response.status_code)

    def failed(exception: BaseException, context: dict[str, Any], **kwargs: Any) -> None:
        call = context.get(_CALL_KEY)
        if call is not None:
            call.error = type(exception).__name__

    def attach(client: Any, function: str | None = None, via: str | None = None) -> None:
        client.meta.events.register("before-parameter-build", keep_params)
        client.meta.events.register("before-call", recorder(function, via))
        # First: another after-call handler may raise (the sandbox's --crash-after-kendra does).
        client.meta.events.register_first("after-call", answered)
        client.meta.events.register("after-call-error", failed)

    def create_client(self: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        client = original(self, service_name, *args, **kwargs)
        if _created_by_function_code(dirs, root.resolve()):
            attach(client)
        return client

    global _attach
    previous = _attach
    botocore.client.ClientCreator.create_client = create_client  # type: ignore[method-assign]
    _attach = attach
    try:
        yield calls
    finally:
        active.clear()
        _attach = previous
        botocore.client.ClientCreator.create_client = original  # type: ignore[method-assign]


# --------------------------------------------------------------------------------------------------
# Calls → IAM requests
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class IamRequest:
    """One authorization AWS makes for a call: ``action`` on ``resource`` (an ARN or ``*``)."""

    action: str
    resource: str


class UnmappedCall(ValueError):
    """A call whose IAM action(s) this module does not know: add it to :func:`iam_requests`."""


_S3_BUCKET = {"ListObjectsV2": "s3:ListBucket", "ListObjects": "s3:ListBucket", "HeadBucket": "s3:ListBucket",
              "ListObjectVersions": "s3:ListBucketVersions", "ListMultipartUploads": "s3:ListBucketMultipartUploads"}
_S3_OBJECT = {"GetObject": "s3:GetObject", "HeadObject": "s3:GetObject", "PutObject": "s3:PutObject",
              "DeleteObject": "s3:DeleteObject", "CreateMultipartUpload": "s3:PutObject",
              "UploadPart": "s3:PutObject", "CompleteMultipartUpload": "s3:PutObject",
              "AbortMultipartUpload": "s3:AbortMultipartUpload", "GetObjectTagging": "s3:GetObjectTagging",
              "PutObjectTagging": "s3:PutObjectTagging", "GetObjectAttributes": "s3:GetObjectAttributes"}
#: With a VersionId, reads and deletes of an object version are authorized as the *Version actions.
_S3_VERSIONED = {"s3:GetObject": "s3:GetObjectVersion", "s3:DeleteObject": "s3:DeleteObjectVersion",
                 "s3:GetObjectTagging": "s3:GetObjectVersionTagging"}
_DYNAMODB_ITEM = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "DescribeTable",
                  "BatchGetItem", "BatchWriteItem", "ConditionCheckItem"}
#: A transaction has no IAM action of its own: each item is authorized as its single-item action.
_DYNAMODB_TRANSACT = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                      "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
_KENDRA_DATA_SOURCE = {"StartDataSourceSyncJob", "StopDataSourceSyncJob", "ListDataSourceSyncJobs",
                       "DescribeDataSource", "UpdateDataSource", "DeleteDataSource"}
_SQS = {"SendMessage": "SendMessage", "SendMessageBatch": "SendMessage", "ReceiveMessage": "ReceiveMessage",
        "DeleteMessage": "DeleteMessage", "DeleteMessageBatch": "DeleteMessage",
        "ChangeMessageVisibility": "ChangeMessageVisibility",
        "ChangeMessageVisibilityBatch": "ChangeMessageVisibility", "GetQueueAttributes": "GetQueueAttributes",
        "GetQueueUrl": "GetQueueUrl"}
_STATES = {"StartExecution": "stateMachine", "StartSyncExecution": "stateMachine",
           "DescribeExecution": "execution", "StopExecution": "execution", "DescribeStateMachine": "stateMachine"}
#: The error codes of a read of a missing key (GetObject: NoSuchKey; HeadObject: a bare 404).
_S3_MISSING = {"NoSuchKey", "404", "NotFound"}
#: Calls no identity policy needs to allow.
_UNAUTHORIZED = {("sts", "GetCallerIdentity")}


def _queue_arn(url: str | None, name: str | None, region: str, account: str) -> str:
    if url:
        account_part, queue = url.rstrip("/").split("/")[-2:]
        return f"arn:aws:sqs:{region}:{account_part}:{queue}"
    return f"arn:aws:sqs:{region}:{account}:{name}"


def _function_arn(name: str, qualifier: str | None, region: str, account: str) -> str:
    if name.startswith("arn:"):
        arn = name
    elif ":" in name:  # account:function:name or name:qualifier
        parts = name.split(":")
        arn = (f"arn:aws:lambda:{region}:{parts[0]}:function:{':'.join(parts[2:])}" if parts[1:2] == ["function"]
               else f"arn:aws:lambda:{region}:{account}:function:{name}")
    else:
        arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def iam_requests(call: AwsCall, *, region: str = REGION, account: str = ACCOUNT_ID) -> tuple[IamRequest, ...]:
    """The ``(action, resource)`` pairs AWS authorizes for ``call`` (raises :class:`UnmappedCall`)."""
    s, op, t = call.service, call.operation, call.target
    if (s, op) in _UNAUTHORIZED:
        return ()
    if s == "s3":
        bucket_arn = f"arn:aws:s3:::{t.get('bucket')}"
        if op in _S3_BUCKET:
            return (IamRequest(_S3_BUCKET[op], bucket_arn),)
        if op == "DeleteObjects":
            return tuple(IamRequest("s3:DeleteObject", f"{bucket_arn}/{key}") for key in t.get("keys", ()))
        if op == "CopyObject":
            return (IamRequest("s3:GetObject", f"arn:aws:s3:::{t['copy_source']}"),
                    IamRequest("s3:PutObject", f"{bucket_arn}/{t.get('key')}"))
        if op in _S3_OBJECT:
            action = _S3_OBJECT[op]
            if t.get("version_id"):
                action = _S3_VERSIONED.get(action, action)
            request = IamRequest(action, f"{bucket_arn}/{t.get('key')}")
            if op in {"GetObject", "HeadObject"} and call.error in _S3_MISSING:
                # S3 answers a read of a missing key with 404 NoSuchKey only to a caller that may list the
                # bucket; to anyone else it is 403 AccessDenied. Code that relies on NoSuchKey needs both.
                return (request, IamRequest("s3:ListBucket", bucket_arn))
            return (request,)
    if s == "dynamodb":
        out = []
        for kind, table in t.get("items", ()):
            action = _DYNAMODB_TRANSACT.get(kind, kind) if op.startswith("Transact") else kind
            if action not in _DYNAMODB_ITEM:
                break
            arn = f"arn:aws:dynamodb:{region}:{account}:table/{table}"
            if t.get("index_name"):
                arn = f"{arn}/index/{t['index_name']}"
            out.append(IamRequest(f"dynamodb:{action}", arn))
        else:
            return tuple(dict.fromkeys(out))
    if s == "kendra":
        index_arn = f"arn:aws:kendra:{region}:{account}:index/{t.get('index_id')}"
        out = [IamRequest(f"kendra:{op}", index_arn)]
        if op in _KENDRA_DATA_SOURCE:  # both resource types are required
            out.append(IamRequest(f"kendra:{op}", f"{index_arn}/data-source/{t.get('data_source_id')}"))
        if t.get("role_arn"):  # Kendra assumes the role to fetch S3Path documents: the caller passes it
            out.append(IamRequest("iam:PassRole", str(t["role_arn"])))
        return tuple(out)
    if s == "sns" and op in {"Publish", "PublishBatch"}:
        return (IamRequest("sns:Publish", str(t.get("topic_arn"))),)
    if s == "sqs" and op in _SQS:
        return (IamRequest(f"sqs:{_SQS[op]}", _queue_arn(t.get("queue_url"), t.get("queue_name"), region, account)),)
    if s == "lambda" and op in {"Invoke", "InvokeAsync"}:
        return (IamRequest("lambda:InvokeFunction", _function_arn(str(t["function"]), t.get("qualifier"), region,
                                                                  account)),)
    if s == "stepfunctions" and op in _STATES:
        return (IamRequest(f"states:{op}", str(t.get("arn"))),)
    if s == "kms" and t.get("arn"):
        return (IamRequest(f"kms:{op}", str(t["arn"])),)
    raise UnmappedCall(f"no IAM mapping for {s} {op} (target {dict(t)})")


# --------------------------------------------------------------------------------------------------
# Policies as the program declared them, and a small evaluator
# --------------------------------------------------------------------------------------------------


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


@cache
def _pattern(glob: str, fold: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile(body, re.IGNORECASE | re.DOTALL if fold else re.DOTALL)


def matches(glob: str, value: str, *, fold: bool = False) -> bool:
    """IAM wildcard matching: ``*`` any run, ``?`` one character; actions match case-insensitively."""
    return _pattern(glob, fold).fullmatch(value) is not None


def _statement_matches(statement: Mapping[str, Any], action: str, resource: str) -> bool:
    for unsupported in ("NotAction", "NotResource", "NotPrincipal"):
        if unsupported in statement:
            raise NotImplementedError(f"{unsupported} is not evaluated (statement {statement.get('Sid')})")
    return any(matches(a, action, fold=True) for a in _list(statement.get("Action"))) and any(
        matches(r, resource) for r in _list(statement.get("Resource"))
    )


def allowed(documents: Sequence[Mapping[str, Any]], action: str, resource: str) -> bool:
    """Whether identity policies ``documents`` allow ``action`` on ``resource``.

    An explicit Deny wins over any Allow; without an Allow the request is denied. ``Condition`` blocks
    are ignored (a conditional Allow counts as an Allow): the stack's only identity-policy condition is
    ``iam:PassedToService`` on PassRole, which the caller satisfies by passing the role to Kendra.
    ``NotAction``/``NotResource`` raise ``NotImplementedError`` rather than being misread.
    """
    statements = [s for d in documents for s in _list(d.get("Statement"))]
    if any(s.get("Effect") == "Deny" and _statement_matches(s, action, resource) for s in statements):
        return False
    return any(s.get("Effect") == "Allow" and _statement_matches(s, action, resource) for s in statements)


@dataclass(frozen=True, order=True)
class Grant:
    """One action an Allow statement grants, with the statement's resources."""

    sid: str
    action: str
    resources: tuple[str, ...] = field(compare=False)

    def covers(self, request: IamRequest) -> bool:
        return matches(self.action, request.action, fold=True) and any(
            matches(r, request.resource) for r in self.resources
        )


def grants(documents: Sequence[Mapping[str, Any]]) -> list[Grant]:
    """Every (statement, action) an Allow statement of ``documents`` grants."""
    out = []
    for document in documents:
        for statement in _list(document.get("Statement")):
            if statement.get("Effect") != "Allow":
                continue
            resources = tuple(str(r) for r in _list(statement.get("Resource")))
            out.extend(Grant(str(statement.get("Sid", "")), str(a), resources) for a in _list(statement.get("Action")))
    return out


def _document(value: Any) -> dict[str, Any]:
    import json

    from sandbox.deploy import unwrap_secrets

    value = unwrap_secrets(value)
    return json.loads(value) if isinstance(value, str) else dict(value)


def role_documents(deployment: Deployment, role_arn: str) -> list[dict[str, Any]]:
    """The policy documents of the role with ARN ``role_arn``, as the program declared them.

    Inline policies (``aws.iam.RolePolicy`` and the role's ``inlinePolicies``) and customer managed
    policies the program declares and attaches. Raises ``LookupError`` for an unknown role and for an
    attached policy the program does not declare (an AWS managed policy cannot be evaluated here).
    """
    roles = [r for r in deployment.resources if r.type == "aws:iam/role:Role" and r.outputs.get("arn") == role_arn]
    if len(roles) != 1:
        raise LookupError(f"{len(roles)} roles with ARN {role_arn}")
    role = roles[0]
    names = {role.id, role.outputs.get("name"), role_arn}
    documents = [_document(p["policy"]) for p in role.inputs.get("inlinePolicies") or [] if p.get("policy")]
    attached = list(role.inputs.get("managedPolicyArns") or [])
    for r in deployment.resources:
        if r.type == "aws:iam/rolePolicy:RolePolicy" and r.inputs.get("role") in names:
            documents.append(_document(r.inputs["policy"]))
        if r.type == "aws:iam/rolePolicyAttachment:RolePolicyAttachment" and r.inputs.get("role") in names:
            attached.append(r.inputs["policyArn"])
    managed = {r.outputs.get("arn"): r for r in deployment.resources if r.type == "aws:iam/policy:Policy"}
    for arn in attached:
        if arn not in managed:
            raise LookupError(f"role {role.id}: attached policy {arn} is not declared by the program")
        documents.append(_document(managed[arn].inputs["policy"]))
    return documents


def function_documents(deployment: Deployment, function_name: str) -> list[dict[str, Any]]:
    """The policy documents of a deployed function's execution role."""
    return role_documents(deployment, deployment.functions[function_name].role)


__all__ = [
    "AwsCall",
    "Grant",
    "IamRequest",
    "RecordedCalls",
    "UnmappedCall",
    "allowed",
    "call_target",
    "charge_to",
    "function_documents",
    "grants",
    "iam_requests",
    "matches",
    "recording",
    "role_documents",
]
