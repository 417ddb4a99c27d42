"""jit_local.template: the SAM translation (SAM tool venv, no network, cached by the template's
sha256) and the resolver of CloudFormation intrinsics for one stack. The resolver is also
checked against moto's CloudFormation on the real template (tests/integration/test_cfn_create.py).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from jit_local import template as template_module
from jit_local.template import (
    SAM_PYTHON_ENV,
    SamToolMissingError,
    Stack,
    TranslationError,
    UnresolvableError,
    translate,
)

ROOT = Path(__file__).resolve().parents[2]

MINIMAL_SAM = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/x
      Handler: app.handler
      Runtime: python3.12
      Environment:
        Variables:
          NAME: !Sub ${AWS::StackName}-x
"""


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "translated"
    monkeypatch.setattr(template_module, "CACHE_DIR", directory)
    template_module._translate_cached.cache_clear()
    yield directory
    template_module._translate_cached.cache_clear()


@pytest.fixture
def subprocess_calls(monkeypatch) -> list[list[str]]:
    calls: list[list[str]] = []
    real_run = subprocess.run

    def spy(argv, **kwargs):
        calls.append(argv)
        return real_run(argv, **kwargs)

    monkeypatch.setattr(template_module.subprocess, "run", spy)
    return calls


# --------------------------------------------------------------------------- translation


def test_translation_runs_the_sam_venv_once_per_template_content_and_reads_the_cache_after(
    tmp_path, cache_dir, subprocess_calls
):
    path = tmp_path / "template.yaml"
    path.write_text(MINIMAL_SAM)
    first = translate(path)
    template_module._translate_cached.cache_clear()  # as a new process would
    assert translate(path) == first
    assert len(subprocess_calls) == 1
    assert len(list(cache_dir.glob("*.json"))) == 1
    path.write_text(MINIMAL_SAM.replace("app.handler", "app.other"))
    changed = translate(path)
    assert len(subprocess_calls) == 2
    assert changed["Resources"]["Fn"]["Properties"]["Handler"] == "app.other"


def test_translation_makes_code_locations_s3_objects_as_sam_package_does(tmp_path, cache_dir):
    path = tmp_path / "template.yaml"
    path.write_text(MINIMAL_SAM)
    function = translate(path)["Resources"]["Fn"]
    assert function["Type"] == "AWS::Lambda::Function"
    assert function["Properties"]["Code"] == {
        "S3Bucket": template_module.CODE_BUCKET,
        "S3Key": "functions/x",
    }


def test_translation_runs_without_this_processes_aws_settings_or_a_way_to_the_network(
    tmp_path, cache_dir, monkeypatch
):
    seen: dict[str, Any] = {}

    def fake_run(argv, **kwargs):
        seen.update(kwargs)
        return subprocess.CompletedProcess(argv, 0, stdout=b'{"Resources": {}}', stderr=b"")

    monkeypatch.setenv("AWS_PROFILE", "prod-admin")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-pass")
    monkeypatch.setattr(template_module.subprocess, "run", fake_run)
    path = tmp_path / "template.yaml"
    path.write_text(MINIMAL_SAM)
    translate(path)
    env = seen["env"]
    assert "AWS_PROFILE" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert env["HTTPS_PROXY"] == env["HTTP_PROXY"] == "http://127.0.0.1:9"
    assert env["AWS_CONFIG_FILE"] == env["AWS_SHARED_CREDENTIALS_FILE"] == "/dev/null"
    # The template as parsed here (short forms in their long form), as JSON: what was hashed.
    sent = json.loads(seen["input"])
    variables = sent["Resources"]["Fn"]["Properties"]["Environment"]["Variables"]
    assert variables == {"NAME": {"Fn::Sub": "${AWS::StackName}-x"}}


SAM_CLI_PYTHON = ROOT / ".tools" / "sam" / "bin" / "python"


@pytest.mark.parametrize("name", ["template.yaml", "templates/member-account.yaml"])
def test_templates_parse_here_exactly_as_the_sam_cli_parses_them(name):
    # The translator venv has no SAM CLI: the template's YAML is read here instead. It must
    # read as the SAM CLI's own reader does (samcli.yamlhelper, in the SAM tool venv).
    if not SAM_CLI_PYTHON.exists():
        pytest.fail("the SAM tool venv is missing: run `make validate` (make test runs it)")
    program = (
        "import json, sys; from samcli.yamlhelper import yaml_parse; "
        "json.dump(yaml_parse(sys.stdin.read()), sys.stdout)"
    )
    text = (ROOT / name).read_text()
    done = subprocess.run(
        [str(SAM_CLI_PYTHON), "-I", "-c", program],
        input=text,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert template_module.parse_cfn_yaml(text) == json.loads(done.stdout)


def test_a_missing_sam_venv_is_a_typed_error_naming_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv(SAM_PYTHON_ENV, str(tmp_path / "no-such-python"))
    with pytest.raises(SamToolMissingError, match="make test"):
        translate()


def test_the_sam_python_comes_from_jit_sam_python_when_set(monkeypatch):
    python = template_module.DEFAULT_SAM_PYTHON
    if not python.exists():
        pytest.fail("the translator venv is missing: `make test` installs it")
    monkeypatch.setenv(SAM_PYTHON_ENV, str(python))
    assert template_module.sam_python() == python
    monkeypatch.delenv(SAM_PYTHON_ENV)
    assert template_module.sam_python() == ROOT / ".tools" / "translator" / "bin" / "python"


def test_a_template_sam_refuses_is_a_translation_error_and_is_not_cached(tmp_path, cache_dir):
    path = tmp_path / "template.yaml"
    path.write_text(MINIMAL_SAM.replace("      CodeUri: functions/x\n", ""))
    with pytest.raises(TranslationError, match="CodeUri"):
        translate(path)
    assert not list(cache_dir.glob("*.json"))


# --------------------------------------------------------------------------- resolution

TEMPLATE: dict[str, Any] = {
    "Parameters": {
        "Accounts": {"Type": "CommaDelimitedList", "Default": ""},
        "Prefix": {"Type": "String", "Default": "/jit-broker/"},
        "Cap": {"Type": "Number", "Default": 5},
        "Required": {"Type": "String"},
    },
    "Conditions": {
        "HasAccounts": {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "Accounts"}]}, ""]}]},
        "Either": {"Fn::Or": [{"Condition": "HasAccounts"}, {"Fn::Equals": ["a", "a"]}]},
        "Loop": {"Condition": "Loop"},
    },
    "Mappings": {"Sizes": {"us-east-1": {"Small": "t4g.nano"}}},
    "Resources": {
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
        "Named": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {"TableName": {"Fn::Sub": "${AWS::StackName}-named"}},
        },
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"Path": "/svc/"}},
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {}},
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
        "Maybe": {
            "Type": "AWS::SQS::Queue",
            "Condition": "HasAccounts",
            "Properties": {},
        },
        "Chicken": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {"TableName": {"Fn::Sub": "${Egg}"}},
        },
        "Egg": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {"TableName": {"Fn::Sub": "${Chicken}"}},
        },
        "Odd": {"Type": "AWS::Some::Thing", "Properties": {}},
    },
}


@pytest.fixture
def stack() -> Stack:
    return Stack(
        TEMPLATE,
        "st",
        account="111122223333",
        region="eu-west-1",
        parameters={"Required": "r"},
        physical_ids={"Table": "ledger", "Named": "ignored", "Api": "abc123defg"},
    )


def test_pseudo_parameters_and_parameter_defaults_and_values(stack):
    assert stack.resolve({"Ref": "AWS::AccountId"}) == "111122223333"
    assert stack.resolve({"Ref": "AWS::Region"}) == "eu-west-1"
    assert stack.resolve({"Ref": "AWS::Partition"}) == "aws"
    assert stack.resolve({"Ref": "AWS::StackName"}) == "st"
    assert stack.resolve({"Ref": "Prefix"}) == "/jit-broker/"
    assert stack.resolve({"Ref": "Cap"}) == "5"  # Ref of a Number parameter is a string
    assert stack.resolve({"Ref": "Required"}) == "r"
    assert stack.resolve({"Ref": "Accounts"}) == [""]


def test_a_parameter_without_default_or_value_and_an_unknown_parameter_are_errors():
    with pytest.raises(UnresolvableError, match="Required"):
        Stack(TEMPLATE, "st").resolve({"Ref": "Required"})
    with pytest.raises(UnresolvableError, match="Nope"):
        Stack(TEMPLATE, "st", parameters={"Nope": "x"})


def test_sub_with_references_attributes_variables_and_literals(stack):
    sub = {
        "Fn::Sub": [
            "arn:${AWS::Partition}:x:${AWS::Region}:${AWS::AccountId}:${Table}/${Table.Arn}/${v}/${!Literal}",
            {"v": {"Ref": "Prefix"}},
        ]
    }
    assert stack.resolve(sub) == (
        "arn:aws:x:eu-west-1:111122223333:ledger/"
        "arn:aws:dynamodb:eu-west-1:111122223333:table/ledger//jit-broker//${Literal}"
    )


def test_a_name_the_template_gives_wins_over_a_given_physical_id(stack):
    assert stack.ref("Named") == "st-named"
    assert stack.arn("Named") == "arn:aws:dynamodb:eu-west-1:111122223333:table/st-named"


def test_unnamed_resources_get_a_stable_cloudformation_style_name_within_the_limits(stack):
    name = stack.ref("Role")
    assert name.startswith("st-Role-") and len(name) <= 64
    again = Stack(TEMPLATE, "st", account="111122223333", region="eu-west-1")
    assert again.ref("Role") == name  # the same stack: the same name, run after run
    assert stack.arn("Role") == f"arn:aws:iam::111122223333:role/svc/{name}"
    long = Stack(TEMPLATE, "s" * 100, parameters={"Required": "r"})
    assert len(long.ref("Role")) == 64


def test_ref_and_getatt_return_what_cloudformation_returns_per_type(stack):
    queue = stack.ref("Queue")
    assert queue.startswith("https://sqs.eu-west-1.amazonaws.com/111122223333/st-Queue-")
    assert stack.get_att("Queue", "Arn").startswith("arn:aws:sqs:eu-west-1:111122223333:st-Queue-")
    assert stack.ref("Api") == "abc123defg"
    assert stack.arn("Api") == "arn:aws:execute-api:eu-west-1:111122223333:abc123defg"
    with pytest.raises(UnresolvableError, match="Arn"):
        stack.get_att("Api", "Arn")  # a RestApi has no Arn attribute in CloudFormation


def test_conditions_if_novalue_join_select_split_and_findinmap(stack):
    assert stack.condition("HasAccounts") is False
    assert stack.condition("Either") is True
    value = {
        "List": [1, {"Fn::If": ["HasAccounts", 2, {"Ref": "AWS::NoValue"}]}, 3],
        "Gone": {"Fn::If": ["HasAccounts", "x", {"Ref": "AWS::NoValue"}]},
        "Joined": {"Fn::Join": ["-", ["a", {"Ref": "AWS::Region"}]]},
        "Selected": {"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]},
        "Mapped": {"Fn::FindInMap": ["Sizes", {"Ref": "AWS::Region"}, "Small"]},
    }
    assert Stack(TEMPLATE, "st", region="us-east-1", parameters={"Required": "r"}).resolve(
        value
    ) == {
        "List": [1, 3],
        "Joined": "a-us-east-1",
        "Selected": "b",
        "Mapped": "t4g.nano",
    }
    with_accounts = Stack(TEMPLATE, "st", parameters={"Required": "r", "Accounts": "1,2"})
    assert with_accounts.condition("HasAccounts") is True
    assert with_accounts.resolve({"Ref": "Accounts"}) == ["1", "2"]


def test_references_the_stack_would_not_resolve_are_errors_never_guesses(stack):
    with pytest.raises(UnresolvableError, match="Maybe"):
        stack.ref("Maybe")  # its condition is false: the stack does not create it
    with pytest.raises(UnresolvableError, match="refers to itself"):
        stack.ref("Chicken")
    with pytest.raises(UnresolvableError, match="refers to itself"):
        stack.condition("Loop")
    with pytest.raises(UnresolvableError, match="AWS::Some::Thing"):
        stack.ref("Odd")
    with pytest.raises(UnresolvableError, match="Missing"):
        stack.ref("Missing")
    with pytest.raises(UnresolvableError, match="Fn::ImportValue"):
        stack.resolve({"Fn::ImportValue": "x"})
    with pytest.raises(UnresolvableError, match="list"):
        stack.resolve({"Fn::Sub": "${Accounts}"})


def test_api_resource_policy_shorthand_is_expanded_to_the_apis_arn():
    template = {
        "Resources": {
            "Api": {
                "Type": "AWS::ApiGateway::RestApi",
                "Properties": {
                    "Policy": {
                        "Statement": [
                            {"Effect": "Allow", "Resource": "execute-api:/*"},
                            {"Effect": "Deny", "NotResource": ["execute-api:/prod/GET/x", "y"]},
                        ]
                    }
                },
            }
        }
    }
    policy = Stack(template, "st", physical_ids={"Api": "a1"}).api_resource_policy("Api")
    assert policy["Statement"][0]["Resource"] == "arn:aws:execute-api:us-east-1:123456789012:a1/*"
    assert policy["Statement"][1]["NotResource"] == [
        "arn:aws:execute-api:us-east-1:123456789012:a1/prod/GET/x",
        "y",
    ]
