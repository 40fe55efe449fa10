"""FastCGI that nginx would never send, straight to crewd's unix socket.

Every malformed or stalled connection is closed and costs nothing else:
the worker that refused it is the same process afterwards, the same
workers answer requests through nginx, and nothing stored changed.
Bodies shorter or longer than CONTENT_LENGTH say are refused before any
handler runs, and no length crewd is told makes it allocate more than
its own caps."""

import os
import re
import socket
import time

import crewtest
from crewtest import StackTestCase, wait_for
from stack import (FCGI_ABORT_REQUEST, FCGI_END_REQUEST,
                   FCGI_GET_VALUES, FCGI_GET_VALUES_RESULT, FCGI_PARAMS,
                   FCGI_STDIN, FCGI_UNKNOWN_TYPE, fcgi_begin, fcgi_pairs,
                   fcgi_record, fcgi_records, fcgi_stream, process_status)

# crewd's fastcgi_timeout in this module's stack, in seconds.
FASTCGI_TIMEOUT = 2

# The parameters crewd accepts at most (fcgi/fastcgi.h).
PARAMS_MAX = 128 * 1024

# crewd's body_max_bytes (the default).
BODY_MAX = 1 << 20

AGENT = {'name': 'Scout', 'role': 'Researcher', 'goal': 'Find things'}


def kib(status, key):
    """A /proc/PID/status size ("1234 kB") in KiB."""
    return int(status[key].split()[0])


class FastcgiTestCase(StackTestCase):
    stack_options = {'fastcgi_timeout': FASTCGI_TIMEOUT}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.t = cls.stack.new_tenant('fcgi')
        cls.schema = cls.stack.tenant_schema(cls.t.id)
        resp = cls.stack.request('POST', '/api/v1/agents', host=cls.t.slug,
                                 token=cls.t.token, json=AGENT)
        if resp.status != 201:
            raise AssertionError(resp)

    def setUp(self):
        self.pids = self.stack.crewd_pids()
        self.state = self.stored_state()
        self.log_offset = len(self.stack.crewd_log())

    def stored_state(self):
        return self.stack.tenant_state(self.t.id)

    def log_since(self):
        return self.stack.crewd_log()[self.log_offset:]

    def served_by(self, resp):
        """The pid of the worker that answered resp through nginx."""
        rid = resp.headers.get('X-Request-Id')
        found = wait_for(lambda: re.search(
            r'crewd\[(\d+)\] req=%s[ :]' % re.escape(rid),
            self.stack.crewd_log()), 5)
        self.assertTrue(found, 'no log line for request %s' % rid)
        return int(found.group(1))

    def assertRefused(self, reason):
        """crewd logged this reason for closing a connection; returns the
        pid of the worker that did."""
        found = wait_for(lambda: re.search(
            r'crewd\[(\d+)\]: FastCGI connection closed before a request: '
            r'.*' + re.escape(reason), self.log_since()), 5)
        self.assertTrue(found, 'not logged: %r\n%s' % (reason,
                                                      self.log_since()))
        return int(found.group(1))

    def assertUnharmed(self, refused_by=None):
        """The same workers live and answer through nginx, and nothing
        stored changed."""
        self.assertEqual(self.stack.crewd_pids(), self.pids)
        master, workers = self.pids
        if refused_by is not None:
            self.assertIn(refused_by, workers)
        served = set()
        for _ in range(4 * len(workers)):
            resp = self.stack.request('GET', '/api/v1/agents',
                                      host=self.t.slug, token=self.t.token)
            self.assertJson(resp, 200)
            served.add(self.served_by(resp))
        self.assertLessEqual(served, set(workers))
        self.assertEqual(self.stack.crewd_pids(), self.pids)
        self.assertEqual(self.stored_state(), self.state)

    def assertClosedUnanswered(self, data, reason):
        raw = self.stack.fcgi_send(data)
        self.assertEqual(raw, b'')
        self.assertUnharmed(self.assertRefused(reason))

    def head(self, method='GET', path='/api/v1/agents', body=b''):
        """BEGIN_REQUEST and the parameters of a valid request."""
        params = self.stack.fcgi_params(method, path, self.t.slug,
                                        self.t.token, body)
        return fcgi_begin() + fcgi_stream(FCGI_PARAMS, fcgi_pairs(params))


class MalformedRecordTest(FastcgiTestCase):

    def test_a_direct_request_that_is_well_formed_is_served(self):
        resp, raw = self.stack.fcgi_request('GET', '/api/v1/agents',
                                            host=self.t.slug,
                                            token=self.t.token)
        self.assertEqual(len(self.assertJson(resp, 200)['items']), 1)
        self.assertEqual(fcgi_records(raw)[-1],
                         (FCGI_END_REQUEST, 1, b'\0' * 8))
        self.assertUnharmed()

    def test_a_record_of_another_version_closes_the_connection(self):
        begin = bytearray(self.head())
        begin[0] = 2
        self.assertClosedUnanswered(bytes(begin), 'version 2')

    def test_garbage_bytes_close_the_connection(self):
        self.assertClosedUnanswered(b'\xfe' + os.urandom(500),
                                    'version 254')

    def test_http_sent_to_the_fastcgi_socket_closes_the_connection(self):
        self.assertClosedUnanswered(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n',
                                    'version 71')

    def test_an_unknown_record_type_closes_the_connection(self):
        self.assertClosedUnanswered(fcgi_record(200, 1, b'abc'),
                                    'type 200 before BEGIN_REQUEST')

    def test_an_unknown_record_type_among_the_parameters_closes_it(self):
        self.assertClosedUnanswered(
            fcgi_begin() + fcgi_record(77, 1, b'xyz') + self.head()[16:],
            'type 77 among the parameters')

    def test_a_truncated_header_closes_the_connection(self):
        self.assertClosedUnanswered(b'\x01\x01\x00', 'mid-request')

    def test_content_beyond_what_the_record_holds_closes_it(self):
        self.assertClosedUnanswered(
            fcgi_begin() + b'\x01\x04\x00\x01\x03\xe8\x00\x00' +
            b'0123456789', 'mid-request')

    def test_a_begin_request_of_the_wrong_size_closes_it(self):
        self.assertClosedUnanswered(
            fcgi_record(1, 1, b'\0\1\0\0\0\0\0\0\0\0\0'),
            'BEGIN_REQUEST record of 11 bytes')

    def test_a_second_begin_request_closes_the_connection(self):
        self.assertClosedUnanswered(fcgi_begin() + self.head(),
                                    'second BEGIN_REQUEST')
        self.setUp()
        self.assertClosedUnanswered(fcgi_begin(1) + fcgi_begin(2),
                                    'request 2 on the connection of '
                                    'request 1')

    def test_an_abort_request_closes_the_connection(self):
        self.assertClosedUnanswered(
            fcgi_begin() + fcgi_record(FCGI_ABORT_REQUEST, 1),
            'aborted the request')

    def test_another_role_is_answered_unknown_role_and_closed(self):
        raw = self.stack.fcgi_send(fcgi_begin(role=2) + self.head()[16:])
        self.assertEqual(fcgi_records(raw), [
            (FCGI_END_REQUEST, 1, b'\0\0\0\0\3\0\0\0')])
        self.assertUnharmed(self.assertRefused('role 2'))

    def test_parameter_lengths_that_overrun_close_the_connection(self):
        cases = [
            ('a name past the stream', b'\x7f\x05abc'),
            ('a value past the stream', b'\x01\x7fab'),
            ('lengths of 2 GiB each', b'\xff\xff\xff\xff' * 2 + b'ab'),
            ('a 2 GiB name', b'\xff\xff\xff\xf0\x10ab'),
            ('a long length cut short', b'\x80\x00'),
            ('an empty name', b'\x00\x01v'),
            ('a NUL in a value', b'\x06\x05METHODG\0ET'),
        ]
        for what, pairs in cases:
            with self.subTest(what):
                self.setUp()
                self.assertClosedUnanswered(
                    fcgi_begin() + fcgi_stream(FCGI_PARAMS, pairs),
                    'malformed parameters')

    def test_a_huge_parameter_stream_is_cut_off_at_the_cap(self):
        workers = self.pids[1]
        before = {pid: kib(process_status(pid), 'VmHWM') for pid in workers}
        pairs = fcgi_pairs([('HTTP_X_%d' % i, 'v' * 60000)
                            for i in range(140)])
        self.assertGreater(len(pairs), 60 * PARAMS_MAX)

        started = time.monotonic()
        raw = self.stack.fcgi_send(fcgi_begin() +
                                   fcgi_stream(FCGI_PARAMS, pairs))
        self.assertEqual(raw, b'')
        self.assertLess(time.monotonic() - started, FASTCGI_TIMEOUT)
        refused_by = self.assertRefused('parameters longer than 131072')
        # Peak memory: the 8 MB sent were never held.
        grown = kib(process_status(refused_by), 'VmHWM') - before[refused_by]
        self.assertLess(grown, 1024)
        self.assertUnharmed(refused_by)

    def test_get_values_with_repeated_names_is_answered_once(self):
        # libfcgi wrote each repeated name into a 64-byte stack buffer.
        pairs = fcgi_pairs([('FCGI_MAX_CONNS', '')] * 60 +
                           [('FCGI_MPXS_CONNS', ''), ('OTHER', '')])
        raw = self.stack.fcgi_send(fcgi_record(FCGI_GET_VALUES, 0, pairs))
        self.assertEqual(fcgi_records(raw), [
            (FCGI_GET_VALUES_RESULT, 0,
             b'\x0e\x01FCGI_MAX_CONNS1\x0f\x01FCGI_MPXS_CONNS0')])
        self.assertUnharmed(self.assertRefused('mid-request'))

    def test_management_records_before_a_request_are_answered(self):
        resp, raw = self.stack.fcgi_request(
            'GET', '/api/v1/agents', host=self.t.slug, token=self.t.token,
            stdin=fcgi_record(FCGI_GET_VALUES, 0, fcgi_pairs(
                {'FCGI_MAX_REQS': ''})) + fcgi_record(42, 0, b'whatever') +
            fcgi_stream(FCGI_STDIN, b''))
        self.assertJson(resp, 200)
        records = fcgi_records(raw)
        self.assertEqual(records[0], (FCGI_GET_VALUES_RESULT, 0,
                                      b'\x0d\x01FCGI_MAX_REQS1'))
        self.assertEqual(records[1], (FCGI_UNKNOWN_TYPE, 0,
                                      b'\x2a' + b'\0' * 7))
        self.assertUnharmed()

    def test_a_connection_that_sends_nothing_is_closed_quietly(self):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.stack.conf['listen'])
        self.assertUnharmed()
        self.assertNotIn('FastCGI connection closed', self.log_since())


class StalledPeerTest(FastcgiTestCase):

    def stall(self, data):
        """Sends data, keeps the connection open and returns how long
        crewd took to close it, while a request through nginx is served
        by another worker meanwhile."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(FASTCGI_TIMEOUT + 10)
            s.connect(self.stack.conf['listen'])
            s.sendall(data)
            started = time.monotonic()
            resp = self.stack.request('GET', '/api/v1/agents',
                                      host=self.t.slug, token=self.t.token)
            self.assertJson(resp, 200)
            self.assertEqual(s.recv(100), b'')
            return time.monotonic() - started

    def test_a_peer_stalled_mid_header_is_dropped_at_the_timeout(self):
        took = self.stall(fcgi_begin() + b'\x01\x04')
        self.assertGreater(took, FASTCGI_TIMEOUT - 0.5)
        self.assertLess(took, FASTCGI_TIMEOUT + 2)
        self.assertUnharmed(self.assertRefused('stalled'))

    def test_a_peer_that_sends_nothing_is_dropped_at_the_timeout(self):
        took = self.stall(b'')
        self.assertGreater(took, FASTCGI_TIMEOUT - 0.5)
        self.assertLess(took, FASTCGI_TIMEOUT + 2)
        self.assertUnharmed(self.assertRefused('stalled'))

    def test_a_peer_stalled_mid_body_is_dropped_at_the_timeout(self):
        body = ('{"name": "Stalled", "role": "R", "goal": "G"}').encode()
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(FASTCGI_TIMEOUT + 10)
            s.connect(self.stack.conf['listen'])
            s.sendall(self.head('POST', '/api/v1/agents', body) +
                      fcgi_record(FCGI_STDIN, 1, body[:10]))
            started = time.monotonic()
            out = b''
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
            took = time.monotonic() - started
        self.assertEqual(out, b'')
        self.assertGreater(took, FASTCGI_TIMEOUT - 0.5)
        self.assertLess(took, FASTCGI_TIMEOUT + 2)
        self.assertIn('request aborted: the peer stalled', self.log_since())
        self.assertUnharmed()


class ContentLengthTest(FastcgiTestCase):

    def post(self, **kwargs):
        return self.stack.fcgi_request('POST', '/api/v1/agents',
                                       host=self.t.slug, token=self.t.token,
                                       **kwargs)[0]

    def test_an_exact_body_is_stored(self):
        resp = self.post(json=dict(AGENT, name='Exact'))
        self.assertJson(resp, 201)
        self.assertEqual(self.stack.psql_value(
            "SELECT count(*) FROM :\"schema\".agents WHERE name = 'Exact'",
            superuser=True, schema=self.schema), '1')

    def test_a_body_shorter_than_content_length_is_refused(self):
        body = ('{"name": "Short", "role": "R", "goal": "G"}').encode()
        resp = self.post(body=body, params={'CONTENT_LENGTH': '1000'})
        problem = self.assertProblem(resp, 400)
        self.assertEqual(problem['detail'], 'the request body was cut short')
        self.assertIn('request aborted: %d of 1000 body bytes arrived'
                      % len(body), self.log_since())
        self.assertUnharmed()

    def test_a_body_cut_off_by_the_peer_aborts_the_request(self):
        body = ('{"name": "Cut", "role": "R", "goal": "G"}').encode()
        resp = self.post(body=body, stdin=fcgi_record(FCGI_STDIN, 1,
                                                      body[:20]))
        self.assertEqual(resp.status, 0)    # the connection was closed
        self.assertIn('request aborted: the peer closed the connection',
                      self.log_since())
        self.assertUnharmed()

    def test_only_content_length_bytes_of_a_longer_body_are_read(self):
        body = ('{"name": "Long", "role": "R", "goal": "G"}').encode()
        resp = self.post(body=body + b'{"extra": true}',
                         params={'CONTENT_LENGTH': str(len(body))})
        self.assertEqual(self.assertJson(resp, 201)['name'], 'Long')

    def test_a_body_without_content_length_is_read_to_its_end(self):
        # As a chunked upload reaches crewd: no length, the body grows
        # past the first read into the cap.
        agent = dict(AGENT, name='Unannounced',
                     backstory='x' * 20000)
        resp = self.post(json=agent, params={'CONTENT_LENGTH': None})
        self.assertEqual(self.assertJson(resp, 201)['backstory'],
                         'x' * 20000)

    def test_a_body_without_content_length_over_the_cap_is_413(self):
        cap = int(self.stack.conf.get('body_max_bytes', 1 << 20))
        resp = self.post(body=b'[' + b'1,' * cap + b'1]',
                         params={'CONTENT_LENGTH': None})
        self.assertProblem(resp, 413)
        self.assertUnharmed()

    def test_a_record_of_another_kind_inside_the_body_aborts_it(self):
        body = ('{"name": "Mixed", "role": "R", "goal": "G"}').encode()
        resp = self.post(body=body, stdin=fcgi_record(FCGI_STDIN, 1,
                                                      body[:10]) +
                         fcgi_begin() + fcgi_stream(FCGI_STDIN, body[10:]))
        self.assertEqual(resp.status, 0)    # the connection was closed
        self.assertIn('request aborted: a second BEGIN_REQUEST',
                      self.log_since())
        self.assertUnharmed()

    def test_lengths_over_the_cap_are_refused_before_any_allocation(self):
        workers = self.pids[1]
        before = {pid: kib(process_status(pid), 'VmPeak') for pid in workers}
        for length in (str(BODY_MAX + 1), str(1 << 40), str(1 << 63),
                       '99999999999999999999999999'):
            with self.subTest(length=length):
                resp = self.post(body=b'{}', params={'CONTENT_LENGTH':
                                                     length})
                self.assertProblem(resp, 400 if len(length) > 20 else 413)
        for pid in workers:
            grown = kib(process_status(pid), 'VmPeak') - before[pid]
            self.assertLess(grown, BODY_MAX // 1024, pid)
        self.assertUnharmed()

    def test_content_lengths_that_are_not_numbers_are_refused(self):
        for length in ('-1', '1e3', ' 5', '5 ', '0x10', '+5', '5;5'):
            with self.subTest(length=length):
                resp = self.post(body=b'{}', params={'CONTENT_LENGTH':
                                                     length})
                self.assertProblem(resp, 400)
        self.assertUnharmed()


if __name__ == '__main__':
    crewtest.main()
