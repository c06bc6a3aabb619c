"""Reading the lab nodes' Pacemaker logs (/var/log/pacemaker/pacemaker.log): one parser of
their timestamps for every scenario that times what Pacemaker did (lab.sh imports it)."""
import datetime

_YEAR = datetime.datetime.now().year


def ts(line):
    """The epoch seconds of a pacemaker.log line ("Dec 02 07:15:01.123 node1 ..."), or None.
    The log has no year: the current one is assumed."""
    try:
        return datetime.datetime.strptime(f"{_YEAR} {line[:19]}", "%Y %b %d %H:%M:%S.%f").timestamp()
    except ValueError:
        return None
