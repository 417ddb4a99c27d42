"""The local stack's moto endpoint rolls a failed DynamoDB transaction back item by item
(jit_local.moto_endpoint.fast_transactions) instead of copying whole tables: whatever a
sequence of transactions does, succeeding or failing, the table ends exactly as with moto's
own rollback."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from jit_local.moto_endpoint import fast_transactions

TABLE = "ledger"


def put(pk: str, **values: int) -> dict[str, Any]:
    item = {"pk": {"S": pk}, "sk": {"S": "A"}} | {k: {"N": str(v)} for k, v in values.items()}
    return {"Put": {"TableName": TABLE, "Item": item}}


def put_new(pk: str, **values: int) -> dict[str, Any]:
    entry = put(pk, **values)
    entry["Put"]["ConditionExpression"] = "attribute_not_exists(pk)"
    return entry


def add(pk: str, amount: int, below: int | None = None) -> dict[str, Any]:
    update: dict[str, Any] = {
        "TableName": TABLE,
        "Key": {"pk": {"S": pk}, "sk": {"S": "A"}},
        "UpdateExpression": "ADD n :d",
        "ExpressionAttributeValues": {":d": {"N": str(amount)}},
    }
    if below is not None:
        update["ConditionExpression"] = "attribute_not_exists(n) OR n < :max"
        update["ExpressionAttributeValues"][":max"] = {"N": str(below)}
    return {"Update": update}


def delete(pk: str) -> dict[str, Any]:
    return {"Delete": {"TableName": TABLE, "Key": {"pk": {"S": pk}, "sk": {"S": "A"}}}}


# Each: a list of transactions, run in order; some fail (a condition, or a key named twice).
SCENARIOS: dict[str, list[list[dict[str, Any]]]] = {
    "all succeed": [[put("a", n=1), put("b", n=2)], [add("a", 5), delete("b"), put("c", n=3)]],
    "last condition fails": [
        [put("a", n=1), put("b", n=2), put("d", n=4)],
        [add("a", 5), delete("d"), put("c", n=3), put_new("b", n=9)],
    ],
    "first condition fails": [[put("a", n=1)], [put_new("a", n=2), add("b", 1), put("d", n=4)]],
    "counter at its cap": [
        [put("q", n=2), put("x", n=0)],
        [add("x", 1), add("q", 1, below=2)],
        [add("x", 1), add("q", 1, below=3)],
    ],
    "item created then refused": [[add("new", 1), put("z", n=1), put_new("z", n=2)]],
    "same key twice": [[put("a", n=1)], [add("a", 1), put("b", n=1), add("a", 2)]],
}


def run(transactions: list[list[dict[str, Any]]]) -> tuple[list[Any], list[dict[str, Any]]]:
    """Outcomes (None or the error code) and the table's items afterwards, sorted."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    outcomes: list[Any] = []
    for items in transactions:
        try:
            client.transact_write_items(TransactItems=items)
            outcomes.append(None)
        except ClientError as exc:
            reasons = exc.response.get("CancellationReasons") or []
            outcomes.append((exc.response["Error"]["Code"], [r.get("Code") for r in reasons]))
    items = client.scan(TableName=TABLE)["Items"]
    return outcomes, sorted(items, key=lambda item: item["pk"]["S"])


def in_moto(patched: bool) -> Callable[[list[list[dict[str, Any]]]], Any]:
    def go(transactions: list[list[dict[str, Any]]]) -> Any:
        with mock_aws(), fast_transactions() if patched else contextlib.nullcontext():
            return run(transactions)

    return go


@pytest.mark.parametrize("name", SCENARIOS)
def test_item_rollback_ends_exactly_as_motos_whole_table_rollback(name: str) -> None:
    expected = in_moto(patched=False)(SCENARIOS[name])
    assert in_moto(patched=True)(SCENARIOS[name]) == expected


def test_a_cancelled_transaction_changes_nothing() -> None:
    before = [[put("a", n=1), put("b", n=2), put("d", n=4)]]
    failing = [add("a", 5), delete("d"), put("c", n=3), put_new("b", n=9)]
    with mock_aws(), fast_transactions():
        outcomes, after = run([*before, failing])
    with mock_aws():
        _, untouched = run(before)

    assert outcomes[-1][0] == "TransactionCanceledException"
    assert after == untouched


def test_moto_is_put_back_afterwards() -> None:
    import moto.dynamodb.models as models

    original = models.DynamoDBBackend.transact_write_items
    with fast_transactions():
        assert models.DynamoDBBackend.transact_write_items is not original
    assert models.DynamoDBBackend.transact_write_items is original
    assert models.copy.deepcopy is __import__("copy").deepcopy
