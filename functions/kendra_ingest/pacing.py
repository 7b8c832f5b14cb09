"""Sharing a Kendra TPS quota among every concurrent worker (``kendraTps``).

Each worker (a Map iteration, a queue consumer) retries throttled calls on its own, but N workers that
each back off independently still hit the quota N times over. With the quota configured, every
BatchPutDocument / BatchDeleteDocument first books the next free slot of a schedule shared through one
DynamoDB item per operation (in the lock table), and waits for that slot: consecutive calls start one
interval apart across all workers, whatever their number.

A schedule rather than per-second windows: a window lets the last call of one second and the first of
the next land together (a throttle against a quota without burst), and rounds a fractional rate down.

Example::

    pacer = QuotaPacer("lock-table", rate=5.0)
    if pacer.acquire("BatchPutDocument", deadline):
        client.batch_put_document(...)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from kendra_ingest import aws
from kendra_ingest.deadline import Deadline

#: Schedule items expire long after their last slot (TTL attribute of the lock table).
SCHEDULE_TTL_SECONDS = 3600
#: Calls are spaced for this share of the quota: a call reaches Kendra a few milliseconds after its
#: slot, and without slack two calls whose delays differ would arrive closer than the quota allows.
HEADROOM = 0.95
#: Slot times are stored with nanosecond resolution (DynamoDB numbers hold 38 digits).
_PRECISION = 1_000_000_000


class QuotaPacer:
    """A rate limiter shared through DynamoDB: every call books the next slot of one schedule."""

    def __init__(
        self,
        table_name: str,
        rate: float,
        *,
        client: Any = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive (got {rate})")
        self.table_name = table_name
        self.rate = rate
        # Rounded up to what the schedule item stores, so stored slots are never closer than this.
        self.interval = math.ceil(_PRECISION / (rate * HEADROOM)) / _PRECISION
        self._client = client
        self._clock = clock
        self._sleep = sleep

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws.client("dynamodb")
        return self._client

    def acquire(self, operation: str, deadline: Deadline) -> bool:
        """Book a slot of ``operation`` and wait for it; False when it comes too late for ``deadline``.

        A slot booked but not used (the deadline is too close) only leaves one gap in the schedule.
        """
        slot = self._book(operation)
        delay = max(0.0, slot - self._clock())
        if delay and not deadline.allows(delay):
            return False
        if delay:
            self._sleep(delay)
        return True

    def _book(self, operation: str) -> float:
        """The start time of the slot booked for the caller (epoch seconds)."""
        key = {"pk": {"S": f"quota#{operation}"}}
        while True:
            now = self._clock()
            expires = {"N": str(int(now + SCHEDULE_TTL_SECONDS))}
            try:
                # The schedule is idle (its next slot is already past): start it again now.
                self.client.update_item(
                    TableName=self.table_name, Key=key,
                    UpdateExpression="SET nextAt = :next, expiresAt = :expires",
                    ConditionExpression="attribute_not_exists(nextAt) OR nextAt <= :now",
                    ExpressionAttributeValues={":next": _number(now + self.interval), ":now": _number(now),
                                               ":expires": expires},
                )
                return now
            except self.client.exceptions.ConditionalCheckFailedException:
                pass
            try:
                # The schedule runs ahead of now: take its next slot.
                response = self.client.update_item(
                    TableName=self.table_name, Key=key,
                    UpdateExpression="ADD nextAt :interval SET expiresAt = :expires",
                    ConditionExpression="nextAt > :now",
                    ExpressionAttributeValues={":interval": _number(self.interval), ":now": _number(now),
                                               ":expires": expires},
                    ReturnValues="UPDATED_NEW",
                )
            except self.client.exceptions.ConditionalCheckFailedException:
                continue  # it fell idle in between: start it again
            return float(response["Attributes"]["nextAt"]["N"]) - self.interval


def _number(value: float) -> dict[str, str]:
    return {"N": f"{value:.9f}"}
