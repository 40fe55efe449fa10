"""A small MongoDB client for the tests: BSON and OP_MSG over one socket.

The tests read back what crewd wrote (listCollections, listIndexes,
find) without going through crewd's own C code, and against a real
MongoDB they write what crewd never would (documents that break a
validator) to see the server refuse it.  No driver is installable here,
and this is all the tests need: commands on one server, no
authentication, no TLS.
"""

import datetime
import socket
import struct
import urllib.parse

OP_MSG = 2013
UTC = datetime.timezone.utc


class ObjectId:
    """A BSON ObjectId: 12 bytes."""

    def __init__(self, raw):
        if isinstance(raw, str):
            raw = bytes.fromhex(raw)
        if len(raw) != 12:
            raise ValueError('an ObjectId has 12 bytes')
        self.raw = bytes(raw)

    def __eq__(self, other):
        return isinstance(other, ObjectId) and other.raw == self.raw

    def __hash__(self):
        return hash(self.raw)

    def __repr__(self):
        return 'ObjectId(%r)' % self.raw.hex()


class Int64(int):
    """An int written as BSON int64 even when it fits int32."""


class CommandError(Exception):
    def __init__(self, reply):
        super().__init__('%s (code %s)' % (reply.get('errmsg'),
                                           reply.get('code')))
        self.reply = reply
        self.code = reply.get('code')


# ---------------------------------------------------------------------
# BSON.
# ---------------------------------------------------------------------

def _cstring(text):
    data = text.encode('utf-8')
    if b'\0' in data:
        raise ValueError('a BSON key cannot hold NUL')
    return data + b'\0'


def _element(key, value):
    name = _cstring(key)
    if isinstance(value, bool):
        return b'\x08' + name + (b'\x01' if value else b'\x00')
    if isinstance(value, Int64):
        return b'\x12' + name + struct.pack('<q', value)
    if isinstance(value, int):
        if -2**31 <= value < 2**31:
            return b'\x10' + name + struct.pack('<i', value)
        return b'\x12' + name + struct.pack('<q', value)
    if isinstance(value, float):
        return b'\x01' + name + struct.pack('<d', value)
    if isinstance(value, str):
        data = value.encode('utf-8') + b'\0'
        return b'\x02' + name + struct.pack('<i', len(data)) + data
    if isinstance(value, dict):
        return b'\x03' + name + encode(value)
    if isinstance(value, (list, tuple)):
        return b'\x04' + name + encode(
            {str(i): v for i, v in enumerate(value)})
    if isinstance(value, ObjectId):
        return b'\x07' + name + value.raw
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        ms = int(round(value.timestamp() * 1000))
        return b'\x09' + name + struct.pack('<q', ms)
    if value is None:
        return b'\x0a' + name
    raise TypeError('no BSON for %r' % (value,))


def encode(doc):
    body = b''.join(_element(k, v) for k, v in doc.items())
    return struct.pack('<i', len(body) + 5) + body + b'\0'


def _read_cstring(data, pos):
    end = data.index(b'\0', pos)
    return data[pos:end].decode('utf-8'), end + 1


def _decode_document(data, pos, as_list=False):
    (size,) = struct.unpack_from('<i', data, pos)
    end = pos + size - 1
    pos += 4
    out = {}
    while pos < end:
        kind = data[pos]
        key, pos = _read_cstring(data, pos + 1)
        if kind == 0x01:
            (value,) = struct.unpack_from('<d', data, pos)
            pos += 8
        elif kind == 0x02:
            (n,) = struct.unpack_from('<i', data, pos)
            value = data[pos + 4:pos + 3 + n].decode('utf-8')
            pos += 4 + n
        elif kind in (0x03, 0x04):
            value, pos = _decode_document(data, pos, kind == 0x04)
        elif kind == 0x05:
            (n,) = struct.unpack_from('<i', data, pos)
            value = data[pos + 5:pos + 5 + n]
            pos += 5 + n
        elif kind == 0x07:
            value = ObjectId(data[pos:pos + 12])
            pos += 12
        elif kind == 0x08:
            value = data[pos] == 1
            pos += 1
        elif kind == 0x09:
            (ms,) = struct.unpack_from('<q', data, pos)
            value = datetime.datetime.fromtimestamp(ms / 1000, UTC)
            pos += 8
        elif kind == 0x0a:
            value = None
        elif kind == 0x10:
            (value,) = struct.unpack_from('<i', data, pos)
            pos += 4
        elif kind in (0x11, 0x12):
            (value,) = struct.unpack_from('<q', data, pos)
            pos += 8
        elif kind == 0x13:
            value = data[pos:pos + 16]
            pos += 16
        else:
            raise ValueError('BSON type 0x%02x is not read here' % kind)
        out[key] = value
    if as_list:
        return [out[k] for k in sorted(out, key=int)], end + 1
    return out, end + 1


def decode(data):
    return _decode_document(data, 0)[0]


# ---------------------------------------------------------------------
# The client.
# ---------------------------------------------------------------------

def parse_uri(uri):
    """(host, port, database) of a plain mongodb:// URI; ValueError for
    what this client cannot do (credentials, several hosts, SRV)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme != 'mongodb':
        raise ValueError('only mongodb:// URIs')
    if '@' in parts.netloc or ',' in parts.netloc:
        raise ValueError('no credentials and one host only')
    host = parts.hostname or '127.0.0.1'
    port = parts.port or 27017
    database = parts.path.lstrip('/') or 'crewd'
    return host, port, database


class Client:
    def __init__(self, host, port, timeout=10):
        self.sock = socket.create_connection((host, port), timeout)
        self.request_id = 0

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _receive(self, n):
        chunks = []
        while n > 0:
            chunk = self.sock.recv(n)
            if not chunk:
                raise ConnectionError('the server closed the connection')
            chunks.append(chunk)
            n -= len(chunk)
        return b''.join(chunks)

    def command(self, database, command, check=True):
        """Runs one command (a dict, its name first) and returns the
        reply; a reply with ok != 1 raises CommandError unless check is
        False."""
        self.request_id += 1
        doc = dict(command)
        doc['$db'] = database
        body = struct.pack('<I', 0) + b'\0' + encode(doc)
        header = struct.pack('<iiii', 16 + len(body), self.request_id, 0,
                             OP_MSG)
        self.sock.sendall(header + body)

        length, _, _, opcode = struct.unpack('<iiii', self._receive(16))
        payload = self._receive(length - 16)
        if opcode != OP_MSG or payload[4] != 0:
            raise ConnectionError('unexpected reply (opcode %d)' % opcode)
        reply = decode(payload[5:])
        if check and reply.get('ok') != 1:
            raise CommandError(reply)
        return reply

    def _all(self, database, reply):
        cursor = reply['cursor']
        docs = list(cursor.get('firstBatch', []))
        collection = cursor.get('ns', '').split('.', 1)[-1]
        while cursor.get('id'):
            reply = self.command(database, {
                'getMore': Int64(cursor['id']), 'collection': collection})
            cursor = reply['cursor']
            docs += cursor.get('nextBatch', [])
        return docs

    def list_collections(self, database, name=None):
        command = {'listCollections': 1}
        if name is not None:
            command['filter'] = {'name': name}
        return self._all(database, self.command(database, command))

    def list_indexes(self, database, collection):
        return self._all(database, self.command(
            database, {'listIndexes': collection}))

    def find(self, database, collection, filter=None, sort=None):
        command = {'find': collection, 'filter': filter or {}}
        if sort:
            command['sort'] = sort
        return self._all(database, self.command(database, command))

    def insert(self, database, collection, docs, check=True):
        return self.command(database, {'insert': collection,
                                       'documents': list(docs)}, check)
