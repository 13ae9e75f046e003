"""Weather update server (pyzmq): publishes random zip code updates for at most SECONDS.
Usage: wuserver.py ENDPOINT SECONDS"""
import random
import sys
import time
import zmq

endpoint, seconds = sys.argv[1], float(sys.argv[2])
context = zmq.Context()
socket = context.socket(zmq.PUB)
socket.bind(endpoint)
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    zipcode = random.randrange(10000, 10020)
    temperature = random.randrange(-80, 135)
    humidity = random.randrange(10, 60)
    socket.send_string(f"{zipcode:05} {temperature} {humidity}")
