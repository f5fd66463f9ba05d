"""Connecting to Temporal: the standard environment configuration, a server that is still
starting, and our search attributes on a server that lacks them.

Connection settings come from Temporal's standard environment configuration
(`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, TLS options,
`TEMPORAL_PROFILE` and the config file), defaulting to the embedded server at localhost:7233.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfig
from temporalio.service import RPCError, RPCStatusCode

from payouts.temporal import search

DEFAULT_ADDRESS = "localhost:7233"


def connect_config(**overrides: Any) -> dict[str, Any]:
    """Temporal's standard env/profile configuration, defaulting to the embedded server."""
    config: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    config.setdefault("target_host", DEFAULT_ADDRESS)
    config.update(overrides)
    return config


async def connect(converter: DataConverter, **overrides: Any) -> Client:
    """A client with our data converter (pydantic models, encrypted payloads)."""
    config = connect_config(**overrides)
    return await Client.connect(**config, data_converter=converter)


async def wait_until_ready(
    converter: DataConverter, within: float = 60.0, **overrides: Any
) -> Client:
    """Connect, retrying until the server answers (a dev server takes a moment to start)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            client = await connect(converter, **overrides)
            await client.workflow_service.get_system_info(GetSystemInfoRequest())
            return client
        except (RuntimeError, RPCError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.25)


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register our search attributes on a server that lacks them; returns those added."""
    ops = client.operator_service
    try:
        listed = await ops.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        known = set(listed.custom_attributes)
    except RPCError as exc:  # the time-skipping test server can add but not list
        if exc.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        known = set()
    missing = {
        key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
        for key in search.ALL
        if key.name not in known
    }
    if missing:
        await ops.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    return sorted(missing)
