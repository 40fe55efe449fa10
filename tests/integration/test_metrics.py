"""GET /metrics across prefork workers, and the JSON access log."""

import concurrent.futures
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import time

import crewtest
from crewtest import StackTestCase, random_uuid, wait_for

TENANTS_MAX = 3
WORKERS = 3

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')
RFC3339_MS_RE = re.compile(
    r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$')


def parse_metrics(text):
    """{(name, ((label, value), ...)): value} of every sample line."""
    samples = {}
    for line in text.splitlines():
        if line.startswith('#') or not line:
            continue
        m = SAMPLE_RE.match(line)
        if m is None:
            raise AssertionError('not a sample line: %r' % line)
        labels = tuple(sorted(
            (k, v.encode().decode('unicode_escape'))
            for k, v in LABEL_RE.findall(m.group(2) or '')))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def series(samples, name, **labels):
    """The samples of name whose labels include these, by their labels."""
    out = {}
    for (n, lbls), value in samples.items():
        d = dict(lbls)
        if n == name and all(d.get(k) == v for k, v in labels.items()):
            out[lbls] = value
    return out


def value(samples, name, **labels):
    key = (name, tuple(sorted(labels.items())))
    return samples.get(key, 0.0)


def requests_by(samples, tenant_id):
    """{(method, endpoint, status): count} of one tenant_id label."""
    return {(d['method'], d['endpoint'], d['status']): v
            for d, v in ((dict(k), v) for k, v in series(
                samples, 'http_requests_per_tenant_total',
                tenant_id=tenant_id).items())}


def delta(after, before):
    keys = set(after) | set(before)
    return {k: after.get(k, 0) - before.get(k, 0) for k in keys
            if after.get(k, 0) != before.get(k, 0)}


def seated(samples):
    """tenant id -> slug of every tenant with series of its own."""
    return {dict(k)['tenant_id']: dict(k)['slug']
            for k in series(samples, 'crewd_tenant_info')}


class MetricsTestCase(StackTestCase):

    stack_options = {'workers': WORKERS, 'metrics_tenants_max': TENANTS_MAX}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Two tenants for the whole module, made first: they hold seats.
        if not hasattr(cls.stack, 'metrics_tenants'):
            cls.stack.metrics_tenants = (cls.stack.new_tenant('ma'),
                                         cls.stack.new_tenant('mb'))
        cls.a, cls.b = cls.stack.metrics_tenants

    def scrape_raw(self, method='GET', path='/metrics'):
        conn = http.client.HTTPConnection('127.0.0.1',
                                          self.stack.metrics_port,
                                          timeout=30)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            return resp.status, resp.getheader('Content-Type'), \
                resp.read().decode()
        finally:
            conn.close()

    def scrape(self):
        status, _, text = self.scrape_raw()
        self.assertEqual(status, 200, text)
        return parse_metrics(text)

    def call(self, tenant, method, path, token=True, **kwargs):
        return self.stack.request(
            method, path, host=tenant.slug,
            token=tenant.token if token else None, **kwargs)

    def delete_tenant(self, slug):
        self.stack.crewctl('tenant', 'delete', slug, '--yes')

    def wait_for_workers(self, old=()):
        def ready():
            workers = self.stack.crewd_pids()[1]
            return (len(workers) == WORKERS and
                    not set(workers) & set(old))
        self.assertTrue(wait_for(ready, 30), self.stack.crewd_pids())
        return self.stack.crewd_pids()[1]


class RequestCounterTest(MetricsTestCase):

    def test_counters_agree_with_the_requests_sent_across_workers(self):
        a, b = self.a, self.b
        missing = '/api/v1/agents/' + random_uuid()
        plan = (
            [(a, 'GET', '/api/v1/agents', {}, 200)] * 7 +
            [(a, 'GET', missing, {}, 404)] * 3 +
            [(a, 'POST', '/api/v1/agents', {'json': {'name': 1}}, 422)] * 2 +
            [(a, 'GET', '/api/v1/users/me', {}, 200)] * 4 +
            [(b, 'GET', '/api/v1/agents', {}, 200)] * 5 +
            [(b, 'GET', '/api/v1/agents', {'token': False}, 401)] * 2 +
            [(b, 'DELETE', missing, {}, 404)] * 1)
        before = self.scrape()

        def send(step):
            tenant, method, path, kwargs, status = step
            resp = self.call(tenant, method, path, **kwargs)
            self.assertEqual(resp.status, status, resp)
            return resp.headers['X-Request-Id']

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            request_ids = list(pool.map(send, plan))
        after = self.scrape()

        self.assertEqual(delta(requests_by(after, a.id),
                               requests_by(before, a.id)), {
            ('GET', '/api/v1/agents', '200'): 7,
            ('GET', '/api/v1/agents/{id}', '404'): 3,
            ('POST', '/api/v1/agents', '422'): 2,
            ('GET', '/api/v1/users/me', '200'): 4,
        })
        self.assertEqual(delta(requests_by(after, b.id),
                               requests_by(before, b.id)), {
            ('GET', '/api/v1/agents', '200'): 5,
            ('GET', '/api/v1/agents', '401'): 2,
            ('DELETE', '/api/v1/agents/{id}', '404'): 1,
        })

        # The latency histogram saw the same requests, every bucket
        # cumulative up to +Inf, which is the count.
        labels = {'method': 'GET', 'endpoint': '/api/v1/agents'}
        count = value(after, 'http_request_duration_seconds_count',
                      **labels) - value(
            before, 'http_request_duration_seconds_count', **labels)
        self.assertEqual(count, 14)
        buckets = sorted(
            ((float(dict(k)['le']), v) for k, v in series(
                after, 'http_request_duration_seconds_bucket',
                **labels).items()))
        self.assertEqual(buckets[-1][0], float('inf'))
        self.assertEqual(buckets[-1][1], value(
            after, 'http_request_duration_seconds_count', **labels))
        self.assertEqual([v for _, v in buckets],
                         sorted(v for _, v in buckets))

        # Several workers served them, and the counts add up over all.
        log = self.stack.crewd_log()
        pids = {m.group(1) for rid in request_ids for m in re.finditer(
            r'crewd\[(\d+)\] req=%s' % re.escape(rid), log)}
        self.assertGreaterEqual(len(pids), 2, pids)

    def test_promtool_accepts_the_output(self):
        promtool = shutil.which('promtool')
        if promtool is None:
            self.skipTest('promtool is not installed (Debian package '
                          'prometheus; scripts/dev installs it)')
        self.call(self.a, 'GET', '/api/v1/agents')
        status, _, text = self.scrape_raw()
        self.assertEqual(status, 200)
        proc = subprocess.run([promtool, 'check', 'metrics'], input=text,
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertEqual(proc.stdout + proc.stderr, '')

    def test_the_text_format_version_is_declared(self):
        status, content_type, text = self.scrape_raw()
        self.assertEqual(status, 200)
        self.assertEqual(content_type,
                         'text/plain; version=0.0.4; charset=utf-8')
        self.assertIn('# TYPE http_requests_per_tenant_total counter\n',
                      text)
        self.assertIn('# TYPE flow_execution_duration_seconds histogram\n',
                      text)
        self.assertIn('# TYPE active_users_per_tenant gauge\n', text)

    def test_metrics_is_not_served_on_the_apex_or_tenant_hosts(self):
        for host in (None, self.a.slug):
            resp = self.stack.request('GET', '/metrics', host=host)
            self.assertStatus(resp, 404)
            self.assertNotIn(b'http_requests_per_tenant_total', resp.body)
        status, _, _ = self.scrape_raw(path='/healthz')
        self.assertEqual(status, 404)
        status, _, _ = self.scrape_raw(method='POST')
        self.assertEqual(status, 403)

    def test_workers_alive_and_configured(self):
        samples = self.scrape()
        self.assertEqual(value(samples, 'crewd_workers_alive'), WORKERS)
        self.assertEqual(value(samples, 'crewd_workers_configured'), WORKERS)
        self.assertEqual(value(samples, 'crewd_metrics_tenants_max'),
                         TENANTS_MAX)

    def test_a_killed_workers_counts_survive_its_replacement(self):
        before = self.scrape()
        for _ in range(9):
            self.assertStatus(self.call(self.a, 'GET', '/api/v1/tools'),
                              200)
        replaced = value(before, 'crewd_worker_replacements_total')

        # Every worker that may have served them dies at once.
        old = self.stack.crewd_pids()[1]
        for pid in old:
            os.kill(pid, signal.SIGKILL)
        self.wait_for_workers(old)

        self.assertTrue(wait_for(lambda: value(
            self.scrape(), 'crewd_workers_alive') == WORKERS, 10))
        after = self.scrape()
        self.assertEqual(delta(requests_by(after, self.a.id),
                               requests_by(before, self.a.id)),
                         {('GET', '/api/v1/tools', '200'): 9})
        self.assertEqual(value(after, 'crewd_worker_replacements_total'),
                         replaced + WORKERS)
        self.assertEqual(value(after, 'crewd_workers_alive'), WORKERS)

    def test_active_users_are_the_distinct_users_of_the_last_minutes(self):
        tenant = self.stack.new_tenant('mu')
        self.addCleanup(self.delete_tenant, tenant.slug)
        email = 'second@%s.test' % tenant.slug
        self.stack.psql(
            "INSERT INTO public.users (tenant_id, email, password_hash,"
            " role) SELECT tenant_id, :'email', password_hash, 'viewer'"
            " FROM public.users WHERE tenant_id = :'t'", email=email,
            t=tenant.id)
        second = self.stack.login(tenant.slug, email=email)

        def users():
            samples = self.scrape()
            if tenant.id not in seated(samples):
                return None
            return value(samples, 'active_users_per_tenant',
                         tenant_id=tenant.id)

        # The tenant needs a seat of its own: wait for one to be free.
        def seated_with_requests():
            self.call(tenant, 'GET', '/api/v1/users/me')
            return users() is not None
        self.assertTrue(wait_for(seated_with_requests, 20, interval=0.5))
        self.assertEqual(users(), 1)
        for token in (tenant.token, second, second):
            self.assertStatus(self.stack.request(
                'GET', '/api/v1/users/me', host=tenant.slug, token=token),
                200)
        self.assertEqual(users(), 2)

    def test_a_cancelled_run_is_observed_in_the_execution_histogram(self):
        a = self.a
        schema = self.stack.tenant_schema(a.id)
        flow_id = self.stack.psql_value(
            'INSERT INTO :"schema".flows (tenant_id, name, definition)'
            """ VALUES (:'t', 'f', '{"nodes": [], "edges": []}')"""
            ' RETURNING id', schema=schema, t=a.id)
        labels = {'tenant_id': a.id, 'status': 'cancelled'}
        before = self.scrape()

        # Runs 42 s: claimed as a worker would, started earlier by hand.
        resp = self.call(a, 'POST', '/api/v1/flows/%s/executions' % flow_id,
                         json={})
        self.assertStatus(resp, 202)
        execution_id = resp.json()['id']
        self.stack.crewctl('execution', 'claim', '--tenant', a.slug)
        self.stack.psql(
            'UPDATE :"schema".executions SET started_at ='
            " now() - interval '42 seconds' WHERE id = :'id'",
            schema=schema, id=execution_id)
        self.assertStatus(self.call(
            a, 'POST', '/api/v1/executions/%s/cancel' % execution_id), 200)

        # A pending one cancelled before it ran is no run: not observed.
        resp = self.call(a, 'POST', '/api/v1/flows/%s/executions' % flow_id,
                         json={})
        self.assertStatus(self.call(
            a, 'POST', '/api/v1/executions/%s/cancel' % resp.json()['id']),
            200)

        after = self.scrape()
        name = 'flow_execution_duration_seconds'
        self.assertEqual(value(after, name + '_count', **labels) -
                         value(before, name + '_count', **labels), 1)
        run = (value(after, name + '_sum', **labels) -
               value(before, name + '_sum', **labels))
        self.assertGreaterEqual(run, 42)
        self.assertLess(run, 60)
        self.assertEqual(
            value(after, name + '_bucket', le='30', **labels) -
            value(before, name + '_bucket', le='30', **labels), 0)
        self.assertEqual(
            value(after, name + '_bucket', le='60', **labels) -
            value(before, name + '_bucket', le='60', **labels), 1)


class TenantCapTest(MetricsTestCase):

    def test_tenants_beyond_the_cap_count_under_other(self):
        extras = [self.stack.new_tenant('mx') for _ in range(3)]
        for t in extras:
            self.addCleanup(self.delete_tenant, t.slug)
        before = self.scrape()
        sent = {t.id: 2 + i for i, t in enumerate(extras)}
        for t in extras:
            for _ in range(sent[t.id]):
                self.assertStatus(self.call(t, 'GET', '/api/v1/crews'), 200)
        after = self.scrape()

        seats = seated(after)
        self.assertLessEqual(len(seats), TENANTS_MAX)
        self.assertIn(self.a.id, seats)
        self.assertIn(self.b.id, seats)
        unseated = [t for t in extras if t.id not in seats]
        self.assertGreaterEqual(len(unseated), len(extras) - 1)

        # Every extra's requests are somewhere, exactly once.
        key = ('GET', '/api/v1/crews', '200')
        for t in extras:
            got = delta(requests_by(after, t.id),
                        requests_by(before, t.id)).get(key, 0)
            self.assertEqual(got, sent[t.id] if t.id in seats else 0)
        other = delta(requests_by(after, 'other'),
                      requests_by(before, 'other'))
        self.assertEqual(other.get(key, 0),
                         sum(sent[t.id] for t in unseated))
        labels = {dict(k)['tenant_id'] for k in series(
            after, 'http_requests_per_tenant_total')}
        self.assertLessEqual(labels - {'none', 'other'}, set(seats))

    def test_a_deleted_tenants_series_disappear(self):
        tenant = self.stack.new_tenant('md')

        def seated_now():
            self.call(tenant, 'GET', '/api/v1/agents')
            return tenant.id in seated(self.scrape())
        self.assertTrue(wait_for(seated_now, 20, interval=0.5))

        self.delete_tenant(tenant.slug)
        text = self.scrape_raw()[2]
        self.assertNotIn(tenant.id, text)
        self.assertNotIn(tenant.slug, text)
        self.assertIn(self.a.id, text)


class AccessLogTest(MetricsTestCase):

    def log_lines(self):
        try:
            with open(self.stack.conf['access_log']) as f:
                return [json.loads(line) for line in f]
        except FileNotFoundError:
            return []

    def line_of(self, request_id):
        def found():
            return [l for l in self.log_lines()
                    if l['request_id'] == request_id]
        self.assertTrue(wait_for(found, 5))
        lines = found()
        self.assertEqual(len(lines), 1)
        return lines[0]

    def reload_with(self, **changes):
        old = self.stack.crewd_pids()[1]
        self.stack.rewrite_crewd_conf(**changes)
        self.stack.reload_crewd()
        self.wait_for_workers(old)

    def test_each_request_writes_one_json_line_with_its_fields(self):
        user_id = self.call(self.a, 'GET', '/api/v1/users/me').json()['id']
        agent = '/api/v1/agents/' + random_uuid()
        resp = self.call(self.a, 'GET', agent)
        self.assertStatus(resp, 404)
        line = self.line_of(resp.headers['X-Request-Id'])
        self.assertEqual(set(line), {
            'time', 'request_id', 'tenant', 'tenant_id', 'user_id',
            'method', 'route', 'status', 'duration_ms', 'bytes'})
        self.assertRegex(line['time'], RFC3339_MS_RE)
        self.assertEqual(line['tenant'], self.a.slug)
        self.assertEqual(line['tenant_id'], self.a.id)
        self.assertEqual(line['user_id'], user_id)
        self.assertEqual(line['method'], 'GET')
        self.assertEqual(line['route'], '/api/v1/agents/{id}')
        self.assertEqual(line['status'], 404)
        self.assertIsInstance(line['duration_ms'], float)
        self.assertGreater(line['bytes'], len(resp.body))

        # No route: no tenant looked up, no token read.
        resp = self.call(self.a, 'GET', '/api/v1/nothing-here')
        line = self.line_of(resp.headers['X-Request-Id'])
        self.assertEqual((line['tenant'], line['tenant_id'],
                          line['user_id'], line['route'], line['status']),
                         (self.a.slug, None, None, None, 404))

        # The platform host: no tenant at all.
        resp = self.stack.request('GET', '/healthz')
        line = self.line_of(resp.headers['X-Request-Id'])
        self.assertEqual((line['tenant'], line['tenant_id'],
                          line['user_id'], line['route'], line['status']),
                         (None, None, None, '/healthz', 200))

    def test_no_token_password_or_query_reaches_the_access_log(self):
        secret_query = 'q=hunter2-query-secret'
        token = self.stack.login(self.a.slug)
        self.call(self.a, 'GET', '/api/v1/agents?' + secret_query)
        self.call(self.a, 'POST', '/api/v1/agents', json={
            'name': 'body-secret-name', 'role': 'r', 'goal': 'g'})
        self.stack.request('GET', '/api/v1/users/me', host=self.a.slug,
                           token=token)
        self.stack.request('POST', '/api/v1/auth/login', host=self.a.slug,
                           json={'email': self.a.email,
                                 'password': 'wrong-password-secret'})
        with open(self.stack.conf['access_log']) as f:
            text = f.read()
        for secret in (token, self.a.token, self.a.password,
                       'wrong-password-secret', 'hunter2', 'body-secret',
                       token.split('.')[2]):
            self.assertNotIn(secret, text)
        for line in text.splitlines():
            json.loads(line)

    def test_a_full_disk_drops_lines_and_requests_go_on(self):
        self.addCleanup(self.reload_with,
                        access_log=self.stack.conf['access_log'])
        self.reload_with(access_log='/dev/full')
        before = value(self.scrape(), 'crewd_access_log_dropped_total')
        for _ in range(5):
            self.assertStatus(self.call(self.a, 'GET', '/api/v1/agents'),
                              200)
        after = value(self.scrape(), 'crewd_access_log_dropped_total')
        # The first scrape's line too.
        self.assertEqual(after - before, 6)

    def test_sighup_lets_a_rotated_access_log_go(self):
        path = self.stack.conf['access_log']
        os.rename(path, path + '.1')
        self.reload_with()
        resp = self.call(self.a, 'GET', '/api/v1/agents')
        line = self.line_of(resp.headers['X-Request-Id'])
        self.assertEqual(line['route'], '/api/v1/agents')


if __name__ == '__main__':
    crewtest.main()
