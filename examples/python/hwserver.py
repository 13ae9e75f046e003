"""Hello-world server (pyzmq): answers "World" to each "Hello". Usage: hwserver.py ENDPOINT COUNT"""
import sys
import zmq

endpoint, count = sys.argv[1], int(sys.argv[2])
context = zmq.Context()
socket = context.socket(zmq.REP)
socket.bind(endpoint)
for _ in range(count):
    message = socket.recv_string()
    print(f"server: received {message}", flush=True)
    socket.send_string("World")
