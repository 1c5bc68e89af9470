"""A small ComfyUI look-alike for the client and `comfyq doctor` tests, independent of our code.

HTTP/1.1 and the WebSocket upgrade on one port, written on asyncio streams with the standard
library only. Prints "PORT <n>" when ready. Modes (argv): --wrong-accept (answer the upgrade with
a bad Sec-WebSocket-Accept), --not-comfyui (answer everything with an HTML page), --slow-view,
--hold-history (a prompt's history appears only on POST /sim/finish). Test controls:
POST /sim/drop (abort every WebSocket), POST /sim/finish {"prompt_id"} (write its success
history), POST /sim/forget {"prompt_id"} (lose it, as a restarted server does).
Shapes follow shared/comfyui/protocol.md.
"""
import asyncio
import base64
import hashlib
import json
import struct
import sys
import urllib.parse
import os
import threading


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "TestSupport"))
import lifeline  # noqa: E402,F401  (exits with the test process)


MODES = set(sys.argv[1:])
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PNG = bytes.fromhex("89504e470d0a1a0a") + b"\x00" * 2000
history = {}
held = {}
pending = []
sockets = []
number = 0

SYSTEM_STATS = {
    "system": {"os": "posix", "ram_total": 25276510208, "ram_free": 19960414208, "comfyui_version": "0.3.64",
               "python_version": "3.11.2", "pytorch_version": "2.4.0", "embedded_python": False, "argv": ["main.py"]},
    "devices": [{"name": "cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync", "type": "cuda", "index": 0,
                 "vram_total": 85045231616, "vram_free": 84000000000, "torch_vram_total": 0, "torch_vram_free": 0}],
}


def response(status, body=b"", content_type="application/json; charset=utf-8", extra=""):
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}.get(status, "OK")
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


def frame(text):
    data = text.encode()
    if len(data) < 126:
        header = struct.pack("!BB", 0x81, len(data))
    elif len(data) < 65536:
        header = struct.pack("!BBH", 0x81, 126, len(data))
    else:
        header = struct.pack("!BBQ", 0x81, 127, len(data))
    return header + data


async def websocket(reader, writer, headers, query):
    key = headers.get("sec-websocket-key", "")
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    if "--wrong-accept" in MODES:
        accept = base64.b64encode(b"0" * 20).decode()
    writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
    sid = query.get("clientId", ["generated0123"])[0]
    writer.write(frame(json.dumps({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": len(pending)}}, "sid": sid}})))
    await writer.drain()
    sockets.append(writer)
    try:
        while True:
            head = await reader.readexactly(2)
            length = head[1] & 0x7F
            if length == 126:
                length = struct.unpack("!H", await reader.readexactly(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", await reader.readexactly(8))[0]
            mask = await reader.readexactly(4) if head[1] & 0x80 else b"\0\0\0\0"
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(await reader.readexactly(length)))
            if head[0] & 0x0F == 0x8:
                writer.write(bytes([0x88, len(payload[:2])]) + payload[:2])
                await writer.drain()
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()


async def handle(reader, writer):
    global number
    try:
        while True:
            request_line = await reader.readline()
            if not request_line:
                break
            method, target, _ = request_line.decode().split(" ", 2)
            headers = {}
            while True:
                line = (await reader.readline()).decode()
                if line in ("\r\n", "\n", ""):
                    break
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            url = urllib.parse.urlsplit(target)
            path = url.path[4:] if url.path.startswith("/api/") else url.path
            query = urllib.parse.parse_qs(url.query)
            if "--not-comfyui" in MODES:
                writer.write(response(404, b"<html>nginx</html>", "text/html"))
            elif path == "/ws" and headers.get("upgrade", "").lower() == "websocket":
                await websocket(reader, writer, headers, query)
                return
            elif method == "GET" and path == "/system_stats":
                writer.write(response(200, SYSTEM_STATS))
            elif method == "GET" and path == "/prompt":
                writer.write(response(200, {"exec_info": {"queue_remaining": len(pending)}}))
            elif method == "GET" and path == "/queue":
                writer.write(response(200, {"queue_running": [], "queue_pending": [[n, pid, {}, {}, []] for n, pid in pending]}))
            elif method == "POST" and path == "/prompt":
                request = json.loads(body or b"{}")
                if "prompt" not in request:
                    writer.write(response(400, {"error": {"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided", "extra_info": {}}, "node_errors": {}}))
                    continue
                bad = [k for k, v in request["prompt"].items() if v.get("inputs", {}).get("ckpt_name") == "missing.safetensors"]
                if bad:
                    writer.write(response(400, {"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": {}},
                        "node_errors": {bad[0]: {"errors": [{"type": "value_not_in_list", "message": "Value not in list",
                        "details": "ckpt_name: 'missing.safetensors' not in ['sd15.safetensors']",
                        "extra_info": {"input_name": "ckpt_name", "received_value": "missing.safetensors"}}],
                        "dependent_outputs": ["9"], "class_type": "CheckpointLoaderSimple"}}}))
                    continue
                if request.get("client_id") == "explode":
                    writer.write(response(500, b"500 Internal Server Error", "text/plain"))
                    continue
                pid = request.get("prompt_id") or "generated-id"
                pending.append((number, pid))
                writer.write(response(200, {"prompt_id": pid, "number": number, "node_errors": {}}))
                number += 1
                target = held if "--hold-history" in MODES else history
                target[pid] = {"prompt": [number, pid, request["prompt"], {}, ["9"]],
                                "outputs": {"9": {"images": [{"filename": "out_00001_.png", "subfolder": "", "type": "output"}]}},
                                "status": {"status_str": "success", "completed": True, "messages": [["execution_success", {"prompt_id": pid}]]}, "meta": {}}
            elif method == "POST" and path == "/queue":
                request = json.loads(body or b"{}")
                pending[:] = [p for p in pending if p[1] not in request.get("delete", [])]
                writer.write(response(200))
            elif method == "POST" and path == "/sim/drop":
                for socket in sockets:
                    socket.transport.abort()
                sockets.clear()
                writer.write(response(200))
            elif method == "POST" and path == "/sim/finish":
                pid = json.loads(body)["prompt_id"]
                history[pid] = held.pop(pid)
                pending[:] = [p for p in pending if p[1] != pid]
                writer.write(response(200))
            elif method == "POST" and path == "/sim/forget":
                pid = json.loads(body)["prompt_id"]
                history.pop(pid, None)
                held.pop(pid, None)
                pending[:] = [p for p in pending if p[1] != pid]
                writer.write(response(200))
            elif method == "POST" and path == "/interrupt":
                writer.write(response(200))
            elif method == "GET" and path.startswith("/history/"):
                pid = path[len("/history/"):]
                writer.write(response(200, {pid: history[pid]} if pid in history else {}))
            elif method == "GET" and path == "/object_info":
                writer.write(response(200, {"KSampler": {"input": {"required": {"seed": ["INT", {}]}}, "output_node": False}}))
            elif method == "GET" and path == "/view":
                name = query.get("filename", [""])[0]
                if ".." in name or name.startswith("/"):
                    writer.write(response(400))
                elif name != "out_00001_.png":
                    writer.write(response(404))
                else:
                    if "--slow-view" in MODES:
                        await asyncio.sleep(1)
                    writer.write(response(200, PNG, "image/png", 'Content-Disposition: filename="out_00001_.png"\r\n'))
            else:
                writer.write(response(404, {"error": "not found"}))
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    writer.close()


async def main():
    context = None
    if "--tls" in sys.argv:  # --tls CERT KEY: serve https:// and wss://
        import ssl
        index = sys.argv.index("--tls")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[index + 1], sys.argv[index + 2])
    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
