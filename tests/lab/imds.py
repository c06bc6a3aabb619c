"""A node's instance metadata service (IMDSv2 only) for the lab: listens on
169.254.169.254:80 inside the node's network namespace (the address is on the node's lo) and
tells the node which EC2 instance it is.

    imds.py --instance-id i-... --eni eni-... --mac 02:.. --ip 192.0.2.11 --region us-east-1

Answers: PUT /latest/api/token (X-aws-ec2-metadata-token-ttl-seconds: 1..21600); with a
valid token (else 401): meta-data/instance-id, local-ipv4, mac, placement/region,
placement/availability-zone, network/interfaces/macs/[MAC/{interface-id,device-number,
local-ipv4s}], iam/security-credentials/[ROLE] (temporary credentials: what an instance
profile gives, so the agents find credentials through the SDK's default chain and none are
configured in the CIB), and dynamic/instance-identity/document.

System python3 only (no packages): it runs in every node.
"""

import argparse
import datetime
import json
import secrets
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROLE = "paceline-lab"


def main():
    p = argparse.ArgumentParser()
    for k in ("instance-id", "eni", "mac", "ip", "region"):
        p.add_argument("--" + k, required=True)
    p.add_argument("--addr", default="169.254.169.254")
    p.add_argument("--port", type=int, default=80)
    a = p.parse_args()
    tokens = {}  # token -> expiry

    def tree():
        exp = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
        creds = json.dumps({"Code": "Success", "LastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "Type": "AWS-HMAC",
                            "AccessKeyId": "ASIALAB" + a.instance_id[2:].upper()[:13], "SecretAccessKey": "lab-secret",
                            "Token": "lab-token", "Expiration": exp})
        m = "/latest/meta-data/"
        macs = m + "network/interfaces/macs/"
        az = a.region + "a"
        return {
            m: "ami-id\ninstance-id\nlocal-ipv4\nmac\nplacement/\nnetwork/\niam/",
            m + "instance-id": a.instance_id,
            m + "local-ipv4": a.ip,
            m + "mac": a.mac,
            m + "placement/": "availability-zone\nregion",
            m + "placement/region": a.region,
            m + "placement/availability-zone": az,
            macs: a.mac + "/",
            macs + a.mac + "/": "device-number\ninterface-id\nlocal-ipv4s\nmac",
            macs + a.mac + "/device-number": "0",
            macs + a.mac + "/interface-id": a.eni,
            macs + a.mac + "/local-ipv4s": a.ip,
            macs + a.mac + "/mac": a.mac,
            m + "iam/security-credentials/": ROLE,
            m + "iam/security-credentials/" + ROLE: creds,
            "/latest/dynamic/instance-identity/document": json.dumps({
                "accountId": "123456789012", "instanceId": a.instance_id, "region": a.region,
                "availabilityZone": az, "privateIp": a.ip, "instanceType": "t3.micro"}),
        }

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def reply(self, code, body=""):
            b = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(b)))
            self.end_headers()
            self.wfile.write(b)

        def do_PUT(self):
            n = int(self.headers.get("Content-Length") or 0)
            if n:
                self.rfile.read(n)
            if self.path != "/latest/api/token":
                return self.reply(404)
            try:
                ttl = int(self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", ""))
            except ValueError:
                return self.reply(400)
            if not 1 <= ttl <= 21600:
                return self.reply(400)
            t = secrets.token_urlsafe(32)
            tokens[t] = time.time() + ttl
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("X-aws-ec2-metadata-token-ttl-seconds", str(ttl))
            self.send_header("Content-Length", str(len(t)))
            self.end_headers()
            self.wfile.write(t.encode())

        def do_GET(self):
            t = self.headers.get("X-aws-ec2-metadata-token", "")
            if tokens.get(t, 0) < time.time():
                return self.reply(401)
            body = tree().get(self.path)
            self.reply(200, body) if body is not None else self.reply(404)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer((a.addr, a.port), H).serve_forever()


if __name__ == "__main__":
    main()
