"""``python -m dynamorm_async.demo``: a guided tour against a DynamoDB Local it starts itself.

Creates a table, writes, reads, queries and deletes through :class:`DynamoClient`,
printing each step and its latency. Give ``--endpoint URL`` to use a running server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .client import DynamoClient
from .pool import ClientPool

T = TypeVar("T")


async def _step(what: str, fn: Callable[[], Awaitable[T]]) -> T:
    start = time.perf_counter()
    out = await fn()
    print(f"  {what:<52} {1000 * (time.perf_counter() - start):7.1f} ms")
    return out


async def tour(endpoint_url: str, table: str = "demo-payments") -> None:
    """Run the tour against ``endpoint_url``."""
    async with ClientPool() as pool:
        client: DynamoClient = pool.client(endpoint_url, "us-east-1")
        print(f"dynamorm-async demo against {endpoint_url}")
        await _step(
            f"CreateTable {table} (pk S, sk N)",
            lambda: client.create_table(
                TableName=table,
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "N"},
                ],
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                BillingMode="PAY_PER_REQUEST",
            ),
        )
        await _step("wait until ACTIVE", lambda: client.wait_for_table_active(table))

        async def write_all() -> list[dict[str, Any]]:
            return await asyncio.gather(
                *(
                    client.put_item(
                        TableName=table,
                        Item={
                            "pk": {"S": "merchant#1"},
                            "sk": {"N": str(i)},
                            "amount": {"N": f"{i}.50"},
                            "currency": {"S": "USD"},
                        },
                    )
                    for i in range(100)
                )
            )

        await _step("PutItem x100 (concurrent)", write_all)
        got = await _step(
            "GetItem sk=42",
            lambda: client.get_item(
                TableName=table, Key={"pk": {"S": "merchant#1"}, "sk": {"N": "42"}}
            ),
        )
        print(f"    -> {got['Item']}")
        page = await _step(
            "Query sk BETWEEN 10 AND 14",
            lambda: client.query(
                TableName=table,
                KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :b",
                ExpressionAttributeValues={
                    ":p": {"S": "merchant#1"},
                    ":a": {"N": "10"},
                    ":b": {"N": "14"},
                },
            ),
        )
        print(f"    -> {[i['amount']['N'] for i in page['Items']]}")
        await _step(
            "DeleteItem sk=42",
            lambda: client.delete_item(
                TableName=table, Key={"pk": {"S": "merchant#1"}, "sk": {"N": "42"}}
            ),
        )
        await _step("DeleteTable", lambda: client.delete_table(TableName=table))
        print("done.")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--endpoint", help="a running DynamoDB endpoint (default: start DynamoDB Local)"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "demo")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "demo")
    if args.endpoint:
        asyncio.run(tour(args.endpoint))
        return
    from .testing import DynamoDBLocal

    with DynamoDBLocal() as server:
        asyncio.run(tour(server.endpoint_url))


if __name__ == "__main__":
    main()
