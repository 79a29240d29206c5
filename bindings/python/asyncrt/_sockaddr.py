"""Socket addresses as the kernel writes them (struct sockaddr), for IO ops
that take or return one: connect, sendto, accept, recvfrom.

Addresses on the Python side look as the socket module's do: (host, port)
for IPv4, (host, port, flowinfo, scope_id) for IPv6 ((host, port) is
accepted), a path (str or bytes; a leading NUL for Linux's abstract
namespace) for Unix sockets."""

import os
import socket
import struct

SOCKADDR_MAX = 128  # sizeof(struct sockaddr_storage)
_FAMILY = struct.Struct("=H")  # sa_family_t, host order
_PORT = struct.Struct("!H")
_IN6_TAIL = struct.Struct("=I")  # sin6_scope_id
_UNIX_PATH_MAX = 108


def family_of(address):
    """The address family an address looks like."""
    if isinstance(address, (str, bytes, os.PathLike)):
        return socket.AF_UNIX
    host = address[0]
    if len(address) == 4 or ":" in host:
        return socket.AF_INET6
    return socket.AF_INET


def encode_sockaddr(address, family=None):
    """The struct sockaddr bytes of `address` (numeric hosts only: resolve
    names first, e.g. with IO.getaddrinfo)."""
    family = family_of(address) if family is None else family
    if family == socket.AF_INET:
        host, port = address[:2]
        return (_FAMILY.pack(socket.AF_INET) + _PORT.pack(port) + socket.inet_pton(socket.AF_INET, host or "0.0.0.0")
                + bytes(8))
    if family == socket.AF_INET6:
        host, port = address[:2]
        flowinfo, scope_id = (address[2], address[3]) if len(address) >= 4 else (0, 0)
        return (_FAMILY.pack(socket.AF_INET6) + _PORT.pack(port) + struct.pack("!I", flowinfo)
                + socket.inet_pton(socket.AF_INET6, host or "::") + _IN6_TAIL.pack(scope_id))
    if family == socket.AF_UNIX:
        path = os.fsencode(address)
        if len(path) >= _UNIX_PATH_MAX:
            raise ValueError(f"a Unix socket path has at most {_UNIX_PATH_MAX - 1} bytes: {path!r}")
        if path.startswith(b"\0"):
            return _FAMILY.pack(socket.AF_UNIX) + path  # abstract: the length says where it ends
        return _FAMILY.pack(socket.AF_UNIX) + path + b"\0"
    raise ValueError(f"unsupported address family {family}")


def decode_sockaddr(raw, length):
    """The Python form of the struct sockaddr in the first `length` bytes of
    `raw` (None when there is none)."""
    if length < _FAMILY.size:
        return None
    (family,) = _FAMILY.unpack_from(raw)
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[4:8]), _PORT.unpack_from(raw, 2)[0]
    if family == socket.AF_INET6:
        (flowinfo,) = struct.unpack_from("!I", raw, 4)
        (scope_id,) = _IN6_TAIL.unpack_from(raw, 24)
        return socket.inet_ntop(socket.AF_INET6, raw[8:24]), _PORT.unpack_from(raw, 2)[0], flowinfo, scope_id
    if family == socket.AF_UNIX:
        path = raw[2:length]
        if not path.startswith(b"\0"):
            path = path.split(b"\0", 1)[0]
        return os.fsdecode(path) if not path.startswith(b"\0") else path
    return (family, bytes(raw[:length]))
