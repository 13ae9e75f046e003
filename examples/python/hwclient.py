"""Hello-world client (pyzmq). Usage: hwclient.py ENDPOINT COUNT"""
import sys
import zmq

endpoint, count = sys.argv[1], int(sys.argv[2])
context = zmq.Context()
socket = context.socket(zmq.REQ)
socket.setsockopt(zmq.RCVTIMEO, 10000)
socket.connect(endpoint)
for request in range(count):
    socket.send_string("Hello")
    print(f"client: request {request} got {socket.recv_string()}", flush=True)
