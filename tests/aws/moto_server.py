#!/opt/paceline-moto/bin/python3
"""moto's EC2 on 127.0.0.1, patched where it differs from EC2 in ways the agents depend on.

Usage: moto_server.py [PORT]   (0 or nothing: a free port)
Prints "PORT <n>" on stdout once listening, then serves until stdin reaches end of file,
so a test process that dies takes the server with it (no stray processes, no pkill).

Patches (real EC2 behaviour, which moto 5 does not model):
* AssignPrivateIpAddresses with AllowReassignment=true moves the address: it is removed
  from any other interface of the same subnet. Without it, an address that another
  interface holds is refused (InvalidParameterValue), as EC2 does.
* AssociateAddress honours PrivateIpAddress (DescribeAddresses reports it) and, for an
  association made through a network interface, reports the instance it is attached to.
* CreateRoute and ReplaceRoute honour DryRun (DryRunOperation, nothing changed), as EC2
  does: moto 5 would make the change (paceline check asks with DryRun).
"""
import os
import sys
import threading

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.elastic_ip_addresses import ElasticAddress
from moto.ec2.models.elastic_network_interfaces import NetworkInterfaceBackend
from moto.ec2.responses.elastic_ip_addresses import ElasticIPAddresses
from moto.ec2.responses.elastic_network_interfaces import ElasticNetworkInterfaces
from moto.ec2.responses.route_tables import RouteTables
from moto.server import ThreadedMotoServer


def _truthy(v):
    return str(v).lower() in ("true", "1")


# --- AssignPrivateIpAddresses: AllowReassignment -----------------------------------------
_orig_assign_response = ElasticNetworkInterfaces.assign_private_ip_addresses


def _assign_response(self):
    eni_id = self._get_param("NetworkInterfaceId")
    ips = self._get_param("PrivateIpAddresses", []) or []
    allow = _truthy(self._get_param("AllowReassignment", False))
    eni = self.ec2_backend.get_network_interface(eni_id)
    for other in list(self.ec2_backend.enis.values()):
        if other.id == eni.id or other.subnet.id != eni.subnet.id:
            continue
        for item in list(other.private_ip_addresses):
            if item.get("PrivateIpAddress") not in ips:
                continue
            if item.get("Primary") or not allow:
                raise EC2ClientError(
                    "InvalidParameterValue",
                    f"Address {item.get('PrivateIpAddress')} is in use by {other.id}",
                )
            other.private_ip_addresses.remove(item)
    return _orig_assign_response(self)


ElasticNetworkInterfaces.assign_private_ip_addresses = _assign_response

# --- AssociateAddress: PrivateIpAddress and the instance behind an interface ---------------
_orig_associate_response = ElasticIPAddresses.associate_address
_orig_backend_associate = None


def _associate_response(self):
    result = _orig_associate_response(self)
    private_ip = self._get_param("PrivateIpAddress")
    key = self._get_param("AllocationId") or self._get_param("PublicIp")
    for eip in self.ec2_backend.addresses:
        if key in (eip.allocation_id, eip.public_ip):
            eip._paceline_private_ip = private_ip
            if eip.eni is not None and eip.instance is None and eip.eni.instance is not None:
                eip.instance = eip.eni.instance
    return result


ElasticIPAddresses.associate_address = _associate_response


# --- CreateRoute / ReplaceRoute: DryRun ---------------------------------------------------
def _honour_dry_run(original):
    def patched(self):
        self.error_on_dryrun()
        return original(self)

    return patched


RouteTables.create_route = _honour_dry_run(RouteTables.create_route)
RouteTables.replace_route = _honour_dry_run(RouteTables.replace_route)


def _private_ip(self):
    if self.eni is None:
        return None
    return getattr(self, "_paceline_private_ip", None) or self.eni.private_ip_address


ElasticAddress.private_ip_address = property(_private_ip)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print(f"PORT {server.get_host_and_port()[1]}", flush=True)
    # Serve until our parent closes stdin (it exited, or wants us gone).
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except KeyboardInterrupt:
        pass
    os._exit(0)


if __name__ == "__main__":
    main()
