"""ASGI glue: the two WebSocket endpoints of protocol v1 (docs/protocol.md)."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from app.realtime.connection import Connection
from app.realtime.hub import Hub

router = APIRouter()


@router.websocket("/ws/v1/visitor")
async def visitor_socket(websocket: WebSocket) -> None:
    hub: Hub = websocket.app.state.hub
    await Connection(hub, websocket, "visitor").run()


@router.websocket("/ws/v1/agent")
async def agent_socket(websocket: WebSocket) -> None:
    hub: Hub = websocket.app.state.hub
    await Connection(hub, websocket, "agent").run()
