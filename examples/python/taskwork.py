"""Pipeline worker (pyzmq): pulls JSON tasks, pushes JSON results, stops on a task with no work.
Usage: taskwork.py VENTILATOR SINK WORKER_NUMBER"""
import sys
import zmq

ventilator, sink, number = sys.argv[1], sys.argv[2], int(sys.argv[3])
context = zmq.Context()
receiver = context.socket(zmq.PULL)
receiver.connect(ventilator)
sender = context.socket(zmq.PUSH)
sender.connect(sink)
while True:
    task = receiver.recv_json()
    if task["workload"] == 0:
        break
    sender.send_json({"id": task["id"], "worker": number, "sum": sum(range(task["workload"]))})
