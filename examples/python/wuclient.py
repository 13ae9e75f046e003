"""Weather update client (pyzmq): averages 20 updates for zip code 10001. Usage: wuclient.py ENDPOINT"""
import sys
import zmq

context = zmq.Context()
socket = context.socket(zmq.SUB)
socket.setsockopt(zmq.RCVTIMEO, 10000)
socket.connect(sys.argv[1])
socket.setsockopt_string(zmq.SUBSCRIBE, "10001 ")
total = 0
for _ in range(20):
    zipcode, temperature, humidity = socket.recv_string().split()
    assert zipcode == "10001"
    total += int(temperature)
print(f"average temperature for zip code 10001 over 20 updates: {total / 20:.1f} F", flush=True)
