"""An independent WebSocket peer for comfyq's conformance tests (Python `websockets`).

Started by the tests on a free loopback port; prints "PORT <n>" when ready. Each text message
is a command:
  echo:<text>        answer the text back
  binary:<n>         send n bytes (0..255 repeating) as one binary message
  text:<n>           send a text message of n 'x'
  fragments:<a>,<b>  send one text message in fragments a, b, ...
  ping               ping us; answer "pong-ok" when our pong arrives
  close:<code>       close the connection with that code and reason "bye"
  vanish             write half a frame, then drop the TCP connection
  headers            answer the request headers we sent, as JSON
  flood:<n>,<size>   send n text messages of <size> bytes (JSON-like), then "flood-done"
  floodbin:<n>,<size> send n binary messages of <size> bytes, then "flood-done"
  deaf               answer "deaf-ok", then read nothing more (a peer that stopped reading)
Binary messages are echoed. With `--tls CERT KEY` it serves wss:// instead.
"""
import asyncio
import json
import ssl
import sys

import websockets
import os
import threading


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "TestSupport"))
import lifeline  # noqa: E402,F401  (exits with the test process)



async def handler(ws, path):
    async for message in ws:
        if isinstance(message, bytes):
            await ws.send(message)
            continue
        command, _, argument = message.partition(":")
        if command == "echo":
            await ws.send(argument)
        elif command == "binary":
            await ws.send(bytes(i % 256 for i in range(int(argument))))
        elif command == "text":
            await ws.send("x" * int(argument))
        elif command == "fragments":
            await ws.send(iter(argument.split(",")))
        elif command == "ping":
            waiter = await ws.ping(b"hi")
            await waiter
            await ws.send("pong-ok")
        elif command == "close":
            await ws.close(code=int(argument), reason="bye")
        elif command == "vanish":
            ws.transport.write(b"\x81\x7e\x10\x00abc")
            ws.transport.abort()
            return
        elif command == "headers":
            await ws.send(json.dumps({k.lower(): v for k, v in ws.request_headers.raw_items()}))
        elif command in ("flood", "floodbin"):
            count, size = (int(x) for x in argument.split(","))
            if command == "flood":
                body = '{"type":"progress","data":{"value":1,"max":20,"prompt_id":"' + "x" * max(0, size - 70) + '"}}'
            else:
                body = bytes(size)
            for _ in range(count):
                await ws.send(body)
            await ws.send("flood-done")
        elif command == "deaf":
            await ws.send("deaf-ok")
            ws.transport.pause_reading()
        elif command == "path":
            await ws.send(path)


async def main():
    context = None
    if "--tls" in sys.argv:
        index = sys.argv.index("--tls")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[index + 1], sys.argv[index + 2])
    async with websockets.serve(handler, "127.0.0.1", 0, max_size=2**26, ssl=context) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
