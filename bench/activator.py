#!/usr/bin/env python3
"""Socket activation as systemd does it for cloud-network.socket (Accept=no), with re-activation:
owns the listening socket, starts the service on the first pending connection with the socket as
fd 3 (LISTEN_FDS=1, LISTEN_PID = the service's pid) and, when the service exits (--idle-exit),
starts it again on the next connection. systemd-socket-activate starts a service only once.
A line "start" on stdin starts the service at once, without a connection, as a unit's Wants= does
at boot (cloud-network.service wants cloud-network-helper.service, which then gets the socket).

usage: activator.py SOCKET_PATH GID -- COMMAND...
Prints "activated PID" and "exited PID CODE" lines; the service's own output passes through."""
import os
import select
import socket
import subprocess
import sys

path, gid = sys.argv[1], int(sys.argv[2])
command = sys.argv[sys.argv.index('--') + 1:]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(path)
os.chown(path, 0, gid)
os.chmod(path, 0o660)
listener.listen(128)
os.dup2(listener.fileno(), 3, inheritable=True)
print('listening', flush=True)
# LISTEN_PID must be the service's own pid: a shell knows it ($$) and keeps it through exec
wrapper = ['/bin/sh', '-c', 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', 'sh', *command]
sources = [listener, sys.stdin]
while True:
    ready, _, _ = select.select(sources, [], [])
    if sys.stdin in ready:
        line = sys.stdin.readline()
        if not line:
            sources.remove(sys.stdin)
            continue
        if line.strip() != 'start':
            continue
    child = subprocess.Popen(wrapper, pass_fds=(3,))
    print(f'activated {child.pid}', flush=True)
    code = child.wait()
    print(f'exited {child.pid} {code}', flush=True)
