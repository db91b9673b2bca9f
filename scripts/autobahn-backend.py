"""An echo backend that speaks permessage-deflate (Python `websockets`), for the Autobahn
runs through the gateway: every message is sent back as it came (text as text, binary as
binary), with no size limit and no pings of its own.

usage: autobahn-backend.py      prints `listening on ws://127.0.0.1:PORT` once ready
"""
import asyncio

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass


async def main():
    async with serve(
        echo, "127.0.0.1", 0, max_size=None, ping_interval=None, compression="deflate"
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening on ws://127.0.0.1:{port}", flush=True)
        await asyncio.Future()


asyncio.run(main())
