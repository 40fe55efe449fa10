"""No memory lost per request: over a thousand mixed requests through one
worker (list, get, create, patch, delete, client errors, log-ins), then
the worker's exit.

In the sanitizer build (./configure --enable-sanitizers) LeakSanitizer
looks at the worker when it exits: a request that forgot to free
anything leaves unreachable blocks behind, and their report fails the
test.  In every build the worker's resident memory may not grow with the
requests once it is warm (memory that stays reachable, a cache that
grows per request); under AddressSanitizer, whose quarantine holds freed
memory back on purpose, that second check means nothing and is left
out, and the test says so.
"""

import os
import time

import crewtest
from crewtest import StackTestCase, random_uuid
import stack as stacklib

ITERATIONS = 100            # of 10 requests and a few log-ins
WARM_UP = 20                # iterations before the memory is measured
RSS_GROWTH_MAX_KB = 512     # after warm-up, for 800 requests and more


def sanitized(path):
    """True when the program was built with AddressSanitizer."""
    with open(path, 'rb') as f:
        return b'__asan_init' in f.read()


def resident_kb(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    raise AssertionError('no VmRSS for %d' % pid)


class LeakTest(StackTestCase):

    stack_options = {'workers': 1, 'mongo': False}

    def setUp(self):
        self.tenant = self.stack.new_tenant('leaks')
        self.requests = 0

    def call(self, method, path, status, token=None, **kwargs):
        resp = self.stack.request(
            method, path, host=self.tenant.slug,
            token=self.tenant.token if token is None else token, **kwargs)
        self.requests += 1
        self.assertStatus(resp, status)
        return resp

    def login(self, email, status):
        resp = self.stack.request(
            'POST', '/api/v1/auth/login', host=self.tenant.slug,
            json={'email': email, 'password': self.tenant.password})
        self.requests += 1
        self.assertStatus(resp, status)

    def one_round(self, i):
        """Ten requests of every kind, and a log-in every other round."""
        created = self.call('POST', '/api/v1/agents', 201, json={
            'name': 'agent %d' % i, 'role': 'role', 'goal': 'goal',
            'config': {'round': i, 'tags': ['a', 'b']}}).json()
        path = '/api/v1/agents/%s' % created['id']
        etag = self.call('GET', path, 200).headers['ETag']
        self.call('PATCH', path, 200, json={'goal': 'another goal',
                                             'config': {'tags': None}},
                  headers={'If-Match': etag})
        self.call('PATCH', path, 412, json={'goal': 'stale'},
                  headers={'If-Match': etag})
        self.call('GET', '/api/v1/agents?limit=5', 200)
        self.call('POST', '/api/v1/agents', 422,
                  json={'name': '', 'role': 7, 'unknown': True})
        self.call('POST', '/api/v1/agents', 400, body='{"name": ',
                  headers={'Content-Type': 'application/json'})
        self.call('GET', '/api/v1/agents/%s' % random_uuid(), 404)
        self.call('GET', '/api/v1/agents', 401, token='not.a.token')
        self.call('DELETE', path, 204)
        if i % 2 == 0:
            self.login(self.tenant.email, 200)
        elif i % 10 == 1:
            self.login('nobody-%d@leaks.test' % i, 401)

    def test_a_thousand_requests_through_one_worker_lose_no_memory(self):
        worker = self.stack.crewd_pids()[1]
        self.assertEqual(len(worker), 1)
        worker = worker[0]
        asan = sanitized(self.stack.tools['crewd'])

        for i in range(WARM_UP):
            self.one_round(i)
        rss_before = resident_kb(worker)
        for i in range(WARM_UP, ITERATIONS):
            self.one_round(i)
        rss_after = resident_kb(worker)

        self.assertGreaterEqual(self.requests, 1000)
        # One worker served them all: none was replaced, which would
        # have hidden what it lost.
        self.assertEqual(self.stack.crewd_pids()[1], [worker])

        if asan:
            print('\nAddressSanitizer build: LeakSanitizer checks the '
                  'worker at its exit; the resident memory check is '
                  'left out', flush=True)
        else:
            print('\nnot a sanitizer build: resident memory %d -> %d kB '
                  'over the last %d rounds; LeakSanitizer runs in the '
                  'sanitizer build' % (rss_before, rss_after,
                                       ITERATIONS - WARM_UP), flush=True)
            self.assertLessEqual(
                rss_after - rss_before, RSS_GROWTH_MAX_KB,
                'the worker grew from %d to %d kB over %d requests' % (
                    rss_before, rss_after, self.requests))

        # The worker exits (SIGTERM to the master, exit(0) in the
        # worker); LeakSanitizer reports what it lost by then.
        self.assertEqual(self.stack.stop_crewd(), 0)
        self.assertFalse(stacklib.pid_alive(worker))
        report = stacklib.sanitizer_findings(
            ('crewd.log', self.stack.crewd_log()))
        if report:
            self.fail('sanitizer report:\n' + report)
        self.stack.start_crewd()


if __name__ == '__main__':
    crewtest.main()
