"""The lab's EC2: moto_server with the node instances, and the power controller that makes
EC2's StopInstances / StartInstances real for the lab's nodes.

    ec2.py serve --dir D --addr A --port P --region R --nodes N --lab LAB_SH
        moto in this process (run it inside the lab's switch namespace), populated with a VPC
        192.0.0.0/16, a subnet 192.0.2.0/24 and one instance per node (primary private IP
        192.0.2.1I, tag Name=nodeI). Writes D/instances ("nodeI i-... eni-... mac ip" lines)
        and D/ready, appends power events to D/events.jsonl.
    ec2.py query --endpoint URL --region R ip-holders IP      nodes whose ENI has IP
    ec2.py query --endpoint URL --region R route-holders IP   per route table, the node its IP/32
                                                              route names (--multiaz)

--multiaz (serve): two availability zones. Subnet A 192.0.2.0/28 (zone a) holds the odd
nodes, subnet B 192.0.2.16/28 (zone b) the even ones, each with a route table of its own
(D/route-tables: "rtb-... a|b" lines). moto needs an instance's address inside its subnet,
so an even node's instance has 192.0.2.(1I+16) in moto while the lab keeps 192.0.2.1I on its
one L2 segment: what the zones change here is the routing, which is what aws-vpc-move-ip
relies on. The VPC router: this namespace forwards the overlay IP (--overlay) to whichever
node the route table of the sender's zone names (policy routing: a table per zone, the
even nodes' traffic in zone b's, everyone else's — the client's included — in zone a's),
following moto's route tables every 100 ms; no route, no forwarding. The nodes and the
client route the overlay IP through this namespace (lab.sh), so a client's packets follow
the route tables, not the address.
    ec2.py query --endpoint URL --region R state NODE         instance state of NODE
    ec2.py query --endpoint URL --region R start NODE         StartInstances for NODE

Why a patched moto: moto stops and starts instances instantly, so a controller polling it
would miss a fence "reboot" (over in ~0.1 s), and "stopped" would say nothing about the node.
Here StopInstances only moves the instance to "stopping" and queues an event; the controller
kills the node (lab.sh _power off I), and only then does the instance become "stopped".
StartInstances: "pending" for --pending seconds, then "running", and the node boots
(lab.sh _power on I; its PostgreSQL data is kept) --boot seconds later, as an instance's OS
does. So "stopped" in EC2 means the node is dead — what a fence agent that waits for
"stopped" relies on. The boot delay matters: a node back in the cluster before the fencer
has announced the end of its own fencing reads "We were allegedly just fenced" and stays
down; on EC2 a boot takes far longer than the token timeout. moto also ignores AllowReassignment on
AssignPrivateIpAddresses (the address would stay on both ENIs); real EC2 moves it, and refuses
without the flag: patched to do the same.

Test-side tool, run with /opt/paceline-moto/bin/python (moto[server], boto3).
"""

import argparse
import copy
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

ACCOUNT = "123456789012"
# Any AMI of moto's built-in list.
AMI = "ami-760aaa0f"


def now():
    return time.time()


class Events:
    """D/events.jsonl: one JSON object per line, appended and flushed at once."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()

    def add(self, **kv):
        kv = {"t": round(now(), 6), **kv}
        with self.lock, open(self.path, "a") as f:
            f.write(json.dumps(kv) + "\n")
        print("ec2: " + json.dumps(kv), file=sys.stderr, flush=True)


def serve(a):
    from moto.server import ThreadedMotoServer
    from moto.ec2.models.instances import InstanceBackend
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.responses.elastic_network_interfaces import ElasticNetworkInterfaces

    os.makedirs(a.dir, exist_ok=True)
    events = Events(os.path.join(a.dir, "events.jsonl"))
    work = queue.Queue()
    names = {}  # instance id -> node name
    node_ips = {}  # ENI id -> (node name, lab address)
    original_start, original_stop = InstanceBackend.start_instances, InstanceBackend.stop_instances

    def stop_instances(self, instance_ids):
        out = []
        for inst in self.get_multi_instances_by_id(instance_ids):
            previous = copy.copy(inst._state)
            if inst._state.name in ("running", "pending"):
                inst._state.name, inst._state.code = "stopping", 64
                events.add(event="stop-requested", instance=inst.id, node=names.get(inst.id))
                work.put(("off", inst))
            out.append((inst, previous))
        return out

    def start_instances(self, instance_ids):
        out = []
        for inst in self.get_multi_instances_by_id(instance_ids):
            previous = copy.copy(inst._state)
            if inst._state.name in ("stopped", "stopping"):
                inst._state.name, inst._state.code = "pending", 0
                events.add(event="start-requested", instance=inst.id, node=names.get(inst.id))
                work.put(("on", inst))
            out.append((inst, previous))
        return out

    InstanceBackend.stop_instances = stop_instances
    InstanceBackend.start_instances = start_instances

    original_assign = ElasticNetworkInterfaces.assign_private_ip_addresses

    def assign_private_ip_addresses(self):
        ips = self._get_param("PrivateIpAddresses", [])
        allow = self._get_bool_param("AllowReassignment", False)
        eni_id = self._get_param("NetworkInterfaceId")
        for eni in list(self.ec2_backend.enis.values()):
            if eni.id == eni_id:
                continue
            held = [x for x in eni.private_ip_addresses if x.get("PrivateIpAddress") in ips and not x.get("Primary")]
            if held and not allow:
                raise EC2ClientError("InvalidParameterValue", f"Address {held[0]['PrivateIpAddress']} is assigned to {eni.id}; use AllowReassignment")
            for x in held:
                eni.private_ip_addresses.remove(x)
                events.add(event="ip-moved", ip=x["PrivateIpAddress"], from_eni=eni.id, to_eni=eni_id)
        return original_assign(self)

    ElasticNetworkInterfaces.assign_private_ip_addresses = assign_private_ip_addresses

    # CreateRoute / ReplaceRoute honour DryRun as EC2 does (moto 5 would make the change;
    # paceline check asks with DryRun).
    from moto.ec2.responses.route_tables import RouteTables

    def honour_dry_run(original):
        def patched(self):
            self.error_on_dryrun()
            return original(self)
        return patched

    RouteTables.create_route = honour_dry_run(RouteTables.create_route)
    RouteTables.replace_route = honour_dry_run(RouteTables.replace_route)

    def power(action, node):
        i = node[len("node"):]
        env = dict(os.environ, LAB_QUIET="1")
        r = subprocess.run(["bash", a.lab, "_power", action, i], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        return r.returncode, r.stdout.strip()

    stopping = threading.Event()
    # Power cycles per instance: a boot scheduled before a later stop is void.
    cycle = {}

    def controller():
        while True:
            item = work.get()
            if item is None:
                return
            action, inst = item[0], item[1]
            node = names.get(inst.id)
            if action == "off":
                cycle[inst.id] = cycle.get(inst.id, 0) + 1
                t = now()
                rc, out = power("off", node) if node else (1, "no node for this instance")
                events.add(event="powered-off" if rc == 0 else "power-off-failed", instance=inst.id, node=node, ms=int((now() - t) * 1000), out=out[-300:])
                if rc == 0 and inst._state.name == "stopping":
                    original_stop(inst.ec2_backend, [inst.id])
                    events.add(event="stopped", instance=inst.id, node=node)
            elif action == "on":
                time.sleep(a.pending)
                if inst._state.name == "pending":
                    original_start(inst.ec2_backend, [inst.id])
                    events.add(event="running", instance=inst.id, node=node)
                    c = cycle[inst.id] = cycle.get(inst.id, 0) + 1
                    timer = threading.Timer(a.boot, lambda: work.put(("boot", inst, c)))
                    timer.daemon = True
                    timer.start()
            elif action == "boot" and item[2] == cycle.get(inst.id) and inst._state.name == "running":
                t = now()
                rc, out = power("on", node) if node else (1, "no node for this instance")
                events.add(event="powered-on" if rc == 0 else "power-on-failed", instance=inst.id, node=node, ms=int((now() - t) * 1000), out=out[-300:])

    server = ThreadedMotoServer(ip_address=a.addr, port=a.port, verbose=False)
    server.start()

    import boto3
    ec2 = boto3.client("ec2", region_name=a.region, endpoint_url=f"http://{a.addr}:{a.port}",
                       aws_access_key_id="lab", aws_secret_access_key="lab")
    vpc = ec2.create_vpc(CidrBlock="192.0.0.0/16")["Vpc"]["VpcId"]
    zones = {}
    if a.multiaz:
        for zone, cidr in (("a", "192.0.2.0/28"), ("b", "192.0.2.16/28")):
            sn = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=a.region + zone)["Subnet"]["SubnetId"]
            rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
            ec2.associate_route_table(RouteTableId=rtb, SubnetId=sn)
            zones[zone] = (sn, rtb)
        with open(os.path.join(a.dir, "route-tables"), "w") as f:
            f.writelines(f"{rtb} {zone}\n" for zone, (_, rtb) in zones.items())
        subnet = zones["a"][0]
    else:
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="192.0.2.0/24", AvailabilityZone=a.region + "a")["Subnet"]["SubnetId"]
    lines = []
    for i in range(1, a.nodes + 1):
        ip = f"192.0.2.1{i}"
        moto_ip, sn = ip, subnet
        if a.multiaz and i % 2 == 0:
            moto_ip, sn = f"192.0.2.{10 + i + 16}", zones["b"][0]
        inst = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro", SubnetId=sn,
                                 PrivateIpAddress=moto_ip,
                                 TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": f"node{i}"}]}])["Instances"][0]
        eni = inst["NetworkInterfaces"][0]
        names[inst["InstanceId"]] = f"node{i}"
        lines.append(f"node{i} {inst['InstanceId']} {eni['NetworkInterfaceId']} {eni['MacAddress']} {moto_ip}\n")
        node_ips[eni["NetworkInterfaceId"]] = (f"node{i}", ip)
    with open(os.path.join(a.dir, "instances"), "w") as f:
        f.writelines(lines)
    events.add(event="ready", vpc=vpc, subnet=subnet, instances=len(lines))

    worker = threading.Thread(target=controller, daemon=True)
    worker.start()

    def vpc_router():
        """Forward the overlay IP as each zone's route table says (see the module doc)."""
        def sh(*args):
            subprocess.run(list(args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for k in ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.default.send_redirects=0",
                  "net.ipv4.conf.br0.send_redirects=0", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.br0.rp_filter=0"):
            sh("sysctl", "-qw", k)
        table = {"a": "101", "b": "102"}
        for i in range(2, a.nodes + 1, 2):
            sh("ip", "rule", "add", "from", f"192.0.2.1{i}", "lookup", table["b"], "pref", "100")
        sh("ip", "rule", "add", "lookup", table["a"], "pref", "110")
        cidr = a.overlay + "/32"
        now_via = {}
        while not stopping.is_set():
            try:
                rts = ec2.describe_route_tables(RouteTableIds=[rtb for _, rtb in zones.values()])["RouteTables"]
            except Exception:
                time.sleep(0.1)
                continue
            for zone, (_, rtb) in zones.items():
                rt = next((r for r in rts if r["RouteTableId"] == rtb), {})
                route = next((r for r in rt.get("Routes", []) if r.get("DestinationCidrBlock") == cidr), None)
                target = node_ips.get((route or {}).get("NetworkInterfaceId")) if route else None
                if target is None and route and route.get("InstanceId"):
                    target = next((v for e, v in node_ips.items() if names.get(route["InstanceId"]) == v[0]), None)
                via = target[1] if target else None
                if now_via.get(zone, "unset") == via:
                    continue
                if via:
                    sh("ip", "route", "replace", cidr, "via", via, "table", table[zone])
                else:
                    sh("ip", "route", "del", cidr, "table", table[zone])
                now_via[zone] = via
                events.add(event="route", zone=zone, table=rtb, node=target[0] if target else None)
            time.sleep(0.1)

    if a.multiaz:
        threading.Thread(target=vpc_router, daemon=True).start()

    def term(*_):
        stopping.set()

    signal.signal(signal.SIGTERM, term)
    signal.signal(signal.SIGINT, term)
    open(os.path.join(a.dir, "ready"), "w").close()
    while not stopping.wait(1):
        pass
    # Finish the power action under way (a node half booted would escape lab.sh down),
    # drop the others.
    while True:
        try:
            work.get_nowait()
        except queue.Empty:
            break
    work.put(None)
    worker.join(60)


def query(a):
    import boto3
    ec2 = boto3.client("ec2", region_name=a.region, endpoint_url=a.endpoint,
                       aws_access_key_id="lab", aws_secret_access_key="lab")

    def node_instance(node):
        r = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": [node]}])
        return [i for res in r["Reservations"] for i in res["Instances"]][0]

    if a.what == "ip-holders":
        names = {}
        for res in ec2.describe_instances()["Reservations"]:
            for i in res["Instances"]:
                names[i["InstanceId"]] = next((t["Value"] for t in i.get("Tags", []) if t["Key"] == "Name"), i["InstanceId"])
        r = ec2.describe_network_interfaces()  # (moto has no addresses.private-ip-address filter)
        holders = sorted(names.get(e.get("Attachment", {}).get("InstanceId"), e["NetworkInterfaceId"])
                         for e in r["NetworkInterfaces"]
                         if any(p["PrivateIpAddress"] == a.arg and not p.get("Primary") for p in e["PrivateIpAddresses"]))
        print(" ".join(holders))
    elif a.what == "route-holders":
        enis = {}
        for res in ec2.describe_instances()["Reservations"]:
            for i in res["Instances"]:
                name = next((t["Value"] for t in i.get("Tags", []) if t["Key"] == "Name"), i["InstanceId"])
                for n in i.get("NetworkInterfaces", []):
                    enis[n["NetworkInterfaceId"]] = name
                enis[i["InstanceId"]] = name
        holders = []
        for rt in ec2.describe_route_tables()["RouteTables"]:
            for r in rt.get("Routes", []):
                if r.get("DestinationCidrBlock") == a.arg + "/32":
                    holders.append(enis.get(r.get("NetworkInterfaceId") or r.get("InstanceId"), "elsewhere"))
        print(" ".join(holders))
    elif a.what == "state":
        print(node_instance(a.arg)["State"]["Name"])
    elif a.what == "start":
        ec2.start_instances(InstanceIds=[node_instance(a.arg)["InstanceId"]])
    else:
        sys.exit(f"unknown query {a.what}")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--dir", required=True)
    s.add_argument("--addr", required=True)
    s.add_argument("--port", type=int, default=5000)
    s.add_argument("--region", default="us-east-1")
    s.add_argument("--nodes", type=int, required=True)
    s.add_argument("--lab", required=True)
    s.add_argument("--pending", type=float, default=1.0)
    s.add_argument("--boot", type=float, default=10.0)
    s.add_argument("--multiaz", action="store_true")
    s.add_argument("--overlay", default="192.0.2.100")
    q = sub.add_parser("query")
    q.add_argument("--endpoint", required=True)
    q.add_argument("--region", default="us-east-1")
    q.add_argument("what")
    q.add_argument("arg")
    a = p.parse_args()
    serve(a) if a.cmd == "serve" else query(a)


if __name__ == "__main__":
    main()
