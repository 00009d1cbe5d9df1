#!/usr/bin/env python3
"""A bus handler in Python, served over RESP: answers every request of an exchange with
"echo:<payload>". Usage: echo_handler.py <port> <exchange> [group]"""
import sys

import redis

port, exchange = int(sys.argv[1]), sys.argv[2]
conn = redis.Connection(port=port)
args = ["BUS.SERVE", exchange, "TAG", "echo-py"]
if len(sys.argv) > 3:
    args += ["GROUP", sys.argv[3]]
conn.send_command(*args)
print("serving", exchange, "as handler", conn.read_response(), flush=True)
while True:
    msg = conn.read_response()
    if isinstance(msg, list) and msg and msg[0] == b"bus.request":
        _, _exchange, request_id, _key, payload, _tag, _group = msg
        conn.send_command("BUS.REPLY", request_id, b"echo:" + payload)
    elif isinstance(msg, list) and msg and msg[0] == b"bus.event":
        print("event:", [m.decode() if isinstance(m, bytes) else m for m in msg[1:]], flush=True)
