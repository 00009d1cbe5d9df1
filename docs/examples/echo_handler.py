#!/usr/bin/env python3
"""A bus handler in Python, served over RESP: answers every request of an exchange with
"echo:<payload>". Usage: echo_handler.py <port> <exchange> [group]

It keeps serving through the errors a handler meets in production: an error reply (e.g. to a
BUS.REPLY the node could not take) is logged and the loop goes on, and a lost connection is
re-established, with a growing pause, and the exchange served again."""
import sys
import time

import redis

port, exchange = int(sys.argv[1]), sys.argv[2]
serve = ["BUS.SERVE", exchange, "TAG", "echo-py"]
if len(sys.argv) > 3:
    serve += ["GROUP", sys.argv[3]]


def handle(conn):
    global pause
    conn.send_command(*serve)
    print("serving", exchange, "as handler", conn.read_response(), flush=True)
    pause = 0.1
    while True:
        try:
            msg = conn.read_response()
        except redis.ResponseError as e:  # an error reply: report it, keep serving
            print("error reply:", e, file=sys.stderr, flush=True)
            continue
        if isinstance(msg, list) and msg and msg[0] == b"bus.request":
            _, _exchange, request_id, _key, payload, _tag, _group = msg
            conn.send_command("BUS.REPLY", request_id, b"echo:" + payload)
        elif isinstance(msg, list) and msg and msg[0] == b"bus.event":
            print("event:", [m.decode() if isinstance(m, bytes) else m for m in msg[1:]], flush=True)


pause = 0.1
while True:
    conn = redis.Connection(port=port)
    try:
        handle(conn)
    except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
        print("connection lost:", e, "- reconnecting", file=sys.stderr, flush=True)
    finally:
        conn.disconnect()
    time.sleep(pause)
    pause = min(pause * 2, 5.0)
