"""template.yaml as CloudFormation sees it, and as one stack of it holds it.

``translate(template_path)`` reads the template here (:func:`parse_cfn_yaml`: CloudFormation's
short-form tags, as the SAM CLI reads them) and runs aws-sam-translator (the SAM transform
CloudFormation applies on deploy) on it in a venv of its own, as a subprocess with no network:
aws-sam-translator cannot share the app's venv (its pydantic pin conflicts). That venv holds
aws-sam-translator alone (tools/translator/requirements.txt), so the demo never installs the SAM
CLI and its linters: its python is ``.tools/translator/bin/python`` under the repository root
(``make demo`` and ``make test`` make it) or ``$JIT_SAM_PYTHON``. Code locations become S3
objects, as ``sam package`` makes them. The result is cached under ``.tools/translated/``, keyed
by the sha256 of the template's bytes, of the translation script and of the translator venv.

``Stack(translated, ...)`` resolves the translated template's intrinsics (Ref, Fn::GetAtt,
Fn::Sub, Fn::If, Fn::Join, Fn::Select, Fn::Split, Fn::FindInMap, conditions, AWS::NoValue) for
one stack: account, region, stack name, partition, parameter values (the template's defaults
unless given) and the physical ids of the resources the template leaves unnamed (CloudFormation
would generate them: given ones, e.g. the local stack's, or a generated ``<stack>-<logical
id>-<suffix>``). A reference this module cannot resolve raises :class:`UnresolvableError`; it
never guesses.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess  # runs the SAM venv's python: a fixed argv, no shell  # nosec B404
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE_PATH = ROOT / "template.yaml"
# The member accounts' template (issue 9): plain CloudFormation, translated the same way.
MEMBER_TEMPLATE_PATH = ROOT / "templates" / "member-account.yaml"
SAM_PYTHON_ENV = "JIT_SAM_PYTHON"
DEFAULT_SAM_PYTHON = ROOT / ".tools" / "translator" / "bin" / "python"
CACHE_DIR = ROOT / ".tools" / "translated"
# Where `sam package` would upload the code; the translation only needs a bucket and key.
CODE_BUCKET = "jit-broker-artifacts"
TRANSLATE_TIMEOUT_SECONDS = 120

__all__ = [
    "CODE_BUCKET",
    "MEMBER_TEMPLATE_PATH",
    "TEMPLATE_PATH",
    "SamToolMissingError",
    "Stack",
    "TemplateError",
    "TranslationError",
    "UnresolvableError",
    "parse_cfn_yaml",
    "sam_python",
    "translate",
]

# Runs in the translator venv: the template as JSON on stdin, the CloudFormation JSON on stdout.
# CodeUri/ContentUri become s3://<bucket>/<path> as `sam package` makes them. Managed policy
# names (SAM policy shorthand) would need IAM: the template uses none, so none are known.
_TRANSLATE_SCRIPT = """
import json, sys
from samtranslator.translator.transform import transform

class NoManagedPolicies:
    def load(self):
        return {}

template = json.load(sys.stdin)
bucket = sys.argv[1]
for resource in template.get("Resources", {}).values():
    props = resource.get("Properties") or {}
    for key in ("CodeUri", "ContentUri"):
        if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
            props[key] = "s3://" + bucket + "/" + props[key].strip("/")
json.dump(transform(template, {}, NoManagedPolicies()), sys.stdout)
"""

# Nothing the translator does may reach the network or read this machine's AWS settings.
_CLOSED_PORT = "http://127.0.0.1:9"
_NO_NETWORK_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "SAM_CLI_TELEMETRY": "0",
    "HTTP_PROXY": _CLOSED_PORT,
    "HTTPS_PROXY": _CLOSED_PORT,
    "http_proxy": _CLOSED_PORT,
    "https_proxy": _CLOSED_PORT,
    "NO_PROXY": "",
    "no_proxy": "",
}


class TemplateError(Exception):
    """The template could not be translated or resolved."""


class SamToolMissingError(TemplateError):
    """The SAM tool venv (aws-sam-translator) is not installed."""


class TranslationError(TemplateError):
    """aws-sam-translator refused the template (its message says why)."""


class UnresolvableError(TemplateError):
    """An intrinsic or a reference this resolver does not know how to resolve."""


# --------------------------------------------------------------------------- translation


def sam_python() -> Path:
    """The SAM tool venv's python: ``$JIT_SAM_PYTHON``, else ``.tools/sam/bin/python``."""
    configured = os.environ.get(SAM_PYTHON_ENV)
    python = Path(configured) if configured else DEFAULT_SAM_PYTHON
    if not python.exists():
        raise SamToolMissingError(
            f"the translator venv's python is missing ({python}): `make demo` or `make test` "
            f"installs it, or set {SAM_PYTHON_ENV} to a python with aws-sam-translator installed"
        )
    return python


def _cache_key(template: bytes, python: Path) -> str:
    digest = hashlib.sha256()
    digest.update(hashlib.sha256(template).digest())
    digest.update(hashlib.sha256(_TRANSLATE_SCRIPT.encode()).digest())
    digest.update(CODE_BUCKET.encode())
    # A reinstalled SAM venv (other versions) rewrites its pyvenv.cfg: a new key.
    venv_cfg = python.absolute().parent.parent / "pyvenv.cfg"
    stamp = f"{python.absolute()}|{venv_cfg.stat().st_mtime_ns if venv_cfg.exists() else ''}"
    digest.update(stamp.encode())
    return digest.hexdigest()


class _CfnLoader(yaml.SafeLoader):
    """YAML as the SAM CLI reads a template: short-form intrinsics (``!Ref``, ``!GetAtt A.B``,
    ``!Sub`` ...) become their long forms and timestamps stay strings (``"2012-10-17"``)."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    value: Any
    if tag_suffix == "GetAtt" and isinstance(node, yaml.ScalarNode):
        return {"Fn::GetAtt": loader.construct_scalar(node).split(".", 1)}
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {(tag_suffix if tag_suffix in ("Ref", "Condition") else f"Fn::{tag_suffix}"): value}


_CfnLoader.add_multi_constructor("!", _intrinsic)
_CfnLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", yaml.SafeLoader.yaml_constructors["tag:yaml.org,2002:str"]
)


def parse_cfn_yaml(text: str) -> dict[str, Any]:
    """A CloudFormation/SAM template's YAML (or JSON) as a dict."""
    parsed = yaml.load(text, Loader=_CfnLoader)  # noqa: S506  # nosec B506: a SafeLoader subclass
    if not isinstance(parsed, dict):
        raise TranslationError("the template is not a mapping")
    return parsed


def translate(template_path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The CloudFormation template SAM makes of ``template_path`` (a fresh copy each call)."""
    template = json.dumps(parse_cfn_yaml(Path(template_path).read_text())).encode()
    python = sam_python()
    return json.loads(_translate_cached(template, str(python), _cache_key(template, python)))


@lru_cache(maxsize=8)
def _translate_cached(template: bytes, python: str, key: str) -> str:
    cached = CACHE_DIR / f"{key}.json"
    if cached.exists():
        return cached.read_text()
    # A fixed argv (no shell, no caller text): the SAM venv's python and our script.
    result = subprocess.run(  # noqa: S603  # nosec B603
        [python, "-I", "-c", _TRANSLATE_SCRIPT, CODE_BUCKET],
        input=template,
        capture_output=True,
        env={**_base_env(), **_NO_NETWORK_ENV},
        check=False,
        timeout=TRANSLATE_TIMEOUT_SECONDS,
    )
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip().splitlines()
        raise TranslationError(
            "aws-sam-translator refused the template: " + (message[-1] if message else "?")
        )
    text = result.stdout.decode()
    json.loads(text)  # a broken answer is never cached
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    # Written whole, then renamed: a concurrent reader sees no file or the complete one.
    with tempfile.NamedTemporaryFile("w", dir=CACHE_DIR, suffix=".tmp", delete=False) as out:
        out.write(text)
    os.replace(out.name, cached)
    return text


def _base_env() -> dict[str, str]:
    """Only what a python needs to start: no AWS_*, no proxies or PYTHON* of this process."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    return {name: os.environ[name] for name in keep if name in os.environ}


# --------------------------------------------------------------------------- resolution


class _NoValue:
    """AWS::NoValue: the property or list element it stands for is left out."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


@dataclass(frozen=True)
class _Kind:
    """How CloudFormation names one resource type and what Ref and Fn::GetAtt return."""

    name_property: str | None
    max_name: int
    ref: str  # a key of the values _Kind.values() returns
    arn: str | None  # str.format of partition, region, account, name, path
    attributes: Mapping[str, str] = field(default_factory=dict)  # GetAtt name -> a values key


_ARN = {"Arn": "arn"}
_KINDS: dict[str, _Kind] = {
    "AWS::IAM::Role": _Kind(
        "RoleName", 64, "name", "arn:{partition}:iam::{account}:role{path}{name}", _ARN
    ),
    "AWS::IAM::ManagedPolicy": _Kind(
        "ManagedPolicyName",
        128,
        "arn",
        "arn:{partition}:iam::{account}:policy{path}{name}",
        {"PolicyArn": "arn"},
    ),
    "AWS::DynamoDB::Table": _Kind(
        "TableName", 255, "name", "arn:{partition}:dynamodb:{region}:{account}:table/{name}", _ARN
    ),
    "AWS::Lambda::Function": _Kind(
        "FunctionName",
        64,
        "name",
        "arn:{partition}:lambda:{region}:{account}:function:{name}",
        _ARN,
    ),
    # A stack's first version of the layer: version 1.
    "AWS::Lambda::LayerVersion": _Kind(
        "LayerName",
        140,
        "arn",
        "arn:{partition}:lambda:{region}:{account}:layer:{name}:1",
        {"LayerVersionArn": "arn"},
    ),
    "AWS::Events::EventBus": _Kind(
        "Name",
        256,
        "name",
        "arn:{partition}:events:{region}:{account}:event-bus/{name}",
        {"Arn": "arn", "Name": "name"},
    ),
    "AWS::Events::Rule": _Kind(
        "Name", 64, "name", "arn:{partition}:events:{region}:{account}:rule/{name}", _ARN
    ),
    "AWS::SQS::Queue": _Kind(
        "QueueName",
        80,
        "url",
        "arn:{partition}:sqs:{region}:{account}:{name}",
        {"Arn": "arn", "QueueName": "name", "QueueUrl": "url"},
    ),
    "AWS::Logs::LogGroup": _Kind(
        "LogGroupName",
        512,
        "name",
        "arn:{partition}:logs:{region}:{account}:log-group:{name}:*",
        _ARN,
    ),
    "AWS::SNS::Topic": _Kind(
        "TopicName",
        256,
        "arn",
        "arn:{partition}:sns:{region}:{account}:{name}",
        {"TopicArn": "arn", "TopicName": "name"},
    ),
    "AWS::CloudWatch::Alarm": _Kind(
        "AlarmName", 255, "name", "arn:{partition}:cloudwatch:{region}:{account}:alarm:{name}", _ARN
    ),
    "AWS::SSM::Parameter": _Kind("Name", 2048, "name", None),
    "AWS::Scheduler::Schedule": _Kind(
        "Name",
        64,
        "name",
        "arn:{partition}:scheduler:{region}:{account}:schedule/default/{name}",
        _ARN,
    ),
    # An API's id is CloudFormation's choice; its ARN (no GetAtt) is what execute-api
    # resources hang under.
    "AWS::ApiGateway::RestApi": _Kind(
        None, 10, "name", "arn:{partition}:execute-api:{region}:{account}:{name}"
    ),
    "AWS::ApiGateway::Stage": _Kind("StageName", 128, "name", None),
    "AWS::ApiGateway::Deployment": _Kind(None, 10, "name", None),
}


def _mapping(value: Any, origin: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UnresolvableError(f"{origin}: expected a mapping, got {value!r}")
    return value


_PSEUDO = {"AWS::AccountId", "AWS::Region", "AWS::StackName", "AWS::Partition", "AWS::URLSuffix"}
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


@dataclass(frozen=True)
class Stack:
    """One stack of a translated template: its intrinsics resolved to concrete values."""

    template: Mapping[str, Any]
    name: str
    account: str = "123456789012"
    region: str = "us-east-1"
    partition: str = "aws"
    parameters: Mapping[str, str] = field(default_factory=dict)
    # Physical ids (names, or a RestApi's id) of resources the template leaves unnamed; a
    # name the template gives wins, as in CloudFormation.
    physical_ids: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.parameters) - set(self.template.get("Parameters", {}))
        if unknown:
            raise UnresolvableError(f"no such parameters in the template: {sorted(unknown)}")
        for logical in self.physical_ids:
            self._kind(logical)  # a resource of a known type, or UnresolvableError

    # --- the template -----------------------------------------------------------------
    def resource(self, logical: str) -> dict[str, Any]:
        resources = self.template.get("Resources", {})
        if logical not in resources:
            raise UnresolvableError(f"no resource {logical!r} in the template")
        resource: dict[str, Any] = resources[logical]
        return resource

    def exists(self, logical: str) -> bool:
        """Whether the stack creates the resource (its Condition, if any, holds)."""
        condition = self.resource(logical).get("Condition")
        return condition is None or self.condition(condition)

    def logical_ids(self, resource_type: str) -> list[str]:
        """The logical ids of the resources of one type the stack creates."""
        return [
            name
            for name, resource in self.template.get("Resources", {}).items()
            if resource.get("Type") == resource_type and self.exists(name)
        ]

    def properties(self, logical: str) -> dict[str, Any]:
        return _mapping(self.resolve(self.resource(logical).get("Properties") or {}), logical)

    # --- what IAM and the functions will hold ------------------------------------------
    def inline_policies(self, role: str) -> dict[str, dict[str, Any]]:
        """An AWS::IAM::Role's inline policies: name -> document."""
        policies = self.resolve(self.resource(role)["Properties"].get("Policies") or [])
        return {p["PolicyName"]: p["PolicyDocument"] for p in policies}

    def managed_policy_arns(self, role: str) -> list[str]:
        arns = self.resolve(self.resource(role)["Properties"].get("ManagedPolicyArns") or [])
        return list(arns)

    def policy_document(self, managed_policy: str) -> dict[str, Any]:
        """An AWS::IAM::ManagedPolicy's document."""
        document = self.resource(managed_policy)["Properties"]["PolicyDocument"]
        return _mapping(self.resolve(document), managed_policy)

    def api_resource_policy(self, api: str) -> dict[str, Any]:
        """An AWS::ApiGateway::RestApi's resource policy as API Gateway stores it: the
        ``execute-api:/`` shorthand expanded to the API's own ARN."""
        document = _mapping(self.resolve(self.resource(api)["Properties"]["Policy"]), api)
        prefix = self.arn(api) + "/"

        def expand(value: Any) -> Any:
            if isinstance(value, str) and value.startswith("execute-api:/"):
                return prefix + value.removeprefix("execute-api:/")
            if isinstance(value, list):
                return [expand(v) for v in value]
            return value

        for statement in document["Statement"]:
            for key in ("Resource", "NotResource"):
                if key in statement:
                    statement[key] = expand(statement[key])
        return document

    def environment(self, function: str) -> dict[str, str]:
        """An AWS::Lambda::Function's environment variables."""
        props = self.resource(function)["Properties"]
        variables = self.resolve((props.get("Environment") or {}).get("Variables") or {})
        return {key: str(value) for key, value in variables.items()}

    # --- intrinsics ----------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        """A template value with every intrinsic resolved (a fresh copy)."""
        resolved = self._resolve(value, ())
        return None if resolved is NO_VALUE else resolved

    def ref(self, name: str) -> Any:
        return self._ref(name, ())

    def get_att(self, logical: str, attribute: str) -> str:
        return self._get_att(logical, attribute, ())

    def arn(self, logical: str) -> str:
        """A resource's ARN (also for types with no Arn attribute, such as a RestApi's)."""
        values = self._values(logical, ())
        if "arn" not in values:
            raise UnresolvableError(f"{logical}: no ARN is known for its type")
        return values["arn"]

    def condition(self, name: str) -> bool:
        conditions = self.template.get("Conditions", {})
        if name not in conditions:
            raise UnresolvableError(f"no condition {name!r} in the template")
        return self._condition(conditions[name], (f"Condition {name}",))

    def _resolve(self, value: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(value, list):
            items = [self._resolve(v, seen) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self._ref(argument, seen)
            if key.startswith("Fn::"):
                return self._function(key, argument, seen)
        resolved = {k: self._resolve(v, seen) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _function(self, name: str, argument: Any, seen: tuple[str, ...]) -> Any:
        if name == "Fn::GetAtt":
            logical, attribute = (
                argument.split(".", 1) if isinstance(argument, str) else list(argument)
            )
            return self._get_att(logical, attribute, seen)
        if name == "Fn::Sub":
            return self._sub(argument, seen)
        if name == "Fn::If":
            condition, if_true, if_false = argument
            chosen = if_true if self._condition({"Condition": condition}, seen) else if_false
            return self._resolve(chosen, seen)
        if name == "Fn::Join":
            delimiter, items = argument
            return delimiter.join(str(v) for v in self._listed(self._resolve(items, seen)))
        if name == "Fn::Select":
            index, items = argument
            return self._listed(self._resolve(items, seen))[int(self._resolve(index, seen))]
        if name == "Fn::Split":
            delimiter, text = argument
            return str(self._resolve(text, seen)).split(delimiter)
        if name == "Fn::FindInMap":
            map_name, *keys = (self._resolve(a, seen) for a in argument)
            found: Any = self.template.get("Mappings", {})[map_name]
            for key in keys:
                found = found[key]
            return self._resolve(found, seen)
        if name in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or"):
            return self._condition({name: argument}, seen)
        raise UnresolvableError(f"{name} is not resolved here")

    @staticmethod
    def _listed(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise UnresolvableError(f"expected a list, got {value!r}")
        return value

    def _sub(self, argument: Any, seen: tuple[str, ...]) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {k: self._resolve(v, seen) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            body = match.group(1)
            if body.startswith("!"):
                return "${" + body[1:] + "}"  # ${!Literal}: written as is
            if body in values:
                return str(values[body])
            if "." in body:  # parameter and pseudo parameter names have no dot
                logical, attribute = body.split(".", 1)
                return self._get_att(logical, attribute, seen)
            result = self._ref(body, seen)
            if isinstance(result, list):
                raise UnresolvableError(f"${{{body}}} is a list: Fn::Sub takes strings only")
            return str(result)

        return _SUB_VARIABLE.sub(replace, text)

    def _condition(self, expression: Any, seen: tuple[str, ...]) -> bool:
        if not isinstance(expression, dict) or len(expression) != 1:
            raise UnresolvableError(f"not a condition: {expression!r}")
        ((name, argument),) = expression.items()
        if name == "Condition":
            key = f"Condition {argument}"
            if key in seen:
                raise UnresolvableError(f"condition {argument!r} refers to itself")
            conditions = self.template.get("Conditions", {})
            if argument not in conditions:
                raise UnresolvableError(f"no condition {argument!r} in the template")
            return self._condition(conditions[argument], (*seen, key))
        if name == "Fn::Equals":
            left, right = (self._resolve(a, seen) for a in argument)
            return bool(left == right)
        if name == "Fn::Not":
            (inner,) = argument
            return not self._condition(inner, seen)
        if name == "Fn::And":
            return all(self._condition(inner, seen) for inner in argument)
        if name == "Fn::Or":
            return any(self._condition(inner, seen) for inner in argument)
        raise UnresolvableError(f"{name} is not a condition function")

    def _ref(self, name: str, seen: tuple[str, ...]) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in _PSEUDO:
            return {
                "AWS::AccountId": self.account,
                "AWS::Region": self.region,
                "AWS::StackName": self.name,
                "AWS::Partition": self.partition,
                "AWS::URLSuffix": "amazonaws.com",
            }[name]
        parameters = self.template.get("Parameters", {})
        if name in parameters:
            return self._parameter(name, parameters[name])
        return self._values(name, seen)[self._kind(name).ref]

    def _parameter(self, name: str, declaration: Mapping[str, Any]) -> Any:
        if name in self.parameters:
            value = str(self.parameters[name])
        elif "Default" in declaration:
            value = str(declaration["Default"])
        else:
            raise UnresolvableError(f"parameter {name} has no default and no value was given")
        kind = str(declaration.get("Type", "String"))
        if kind == "CommaDelimitedList" or kind.startswith("List<"):
            return [item.strip() for item in value.split(",")]
        return value

    def _get_att(self, logical: str, attribute: str, seen: tuple[str, ...]) -> str:
        key = self._kind(logical).attributes.get(attribute, "")
        values = self._values(logical, seen)
        if key not in values:
            raise UnresolvableError(f"Fn::GetAtt {logical}.{attribute} is not resolved here")
        return values[key]

    def _kind(self, logical: str) -> _Kind:
        resource_type = self.resource(logical).get("Type", "")
        if resource_type not in _KINDS:
            raise UnresolvableError(f"{logical}: references to {resource_type} are not resolved")
        return _KINDS[resource_type]

    def _values(self, logical: str, seen: tuple[str, ...]) -> dict[str, str]:
        """What Ref and Fn::GetAtt of a resource return: its name, ARN, URL."""
        if logical in seen:
            raise UnresolvableError(f"{logical} refers to itself through {' -> '.join(seen)}")
        seen = (*seen, logical)
        if not self.exists(logical):
            raise UnresolvableError(f"{logical} is not created by this stack (its Condition)")
        kind = self._kind(logical)
        props = self.resource(logical).get("Properties") or {}
        if kind.name_property and kind.name_property in props:
            name = str(self._resolve(props[kind.name_property], seen))
        elif logical in self.physical_ids:
            name = self.physical_ids[logical]
        else:
            name = self._generated_name(logical, kind)
        path = str(self._resolve(props.get("Path", "/"), seen))
        values = {"name": name}
        if kind.arn:
            values["arn"] = kind.arn.format(
                partition=self.partition,
                region=self.region,
                account=self.account,
                name=name,
                path=path,
            )
        if kind.ref == "url":
            values["url"] = f"https://sqs.{self.region}.amazonaws.com/{self.account}/{name}"
        return values

    def _generated_name(self, logical: str, kind: _Kind) -> str:
        """A stable stand-in for the name or id CloudFormation would generate."""
        digest = hashlib.sha256(f"{self.account}/{self.region}/{self.name}/{logical}".encode())
        if kind.name_property is None:  # an API Gateway id: 10 of [a-z0-9]
            return base64.b32encode(digest.digest()).decode().lower()[: kind.max_name]
        suffix = base64.b32encode(digest.digest()).decode()[:12]
        prefix = f"{self.name}-{logical}"[: kind.max_name - len(suffix) - 1].rstrip("-")
        return f"{prefix}-{suffix}"
