"""Faults under load: a worker killed, PostgreSQL restarted, a reload,
a broken configuration, a graceful stop and clients that go away.
Every request loop is bounded in count and time, and all traffic goes
to nginx on 127.0.0.1."""

import os
import signal
import socket
import ssl
import subprocess
import threading
import time

import crewtest
from crewtest import StackTestCase, pid_alive, wait_for
from stack import cpu_ticks

LOOP_MAX_REQUESTS = 5000
LOOP_MAX_SECONDS = 60


class RequestLoop(threading.Thread):
    """GETs the tenant's agents until stopped, at most LOOP_MAX_REQUESTS
    times and LOOP_MAX_SECONDS long, keeping every response."""

    def __init__(self, stack, tenant):
        super().__init__(daemon=True)
        self.stack = stack
        self.tenant = tenant
        self.stopping = threading.Event()
        self.responses = []
        self.errors = []

    def run(self):
        deadline = time.monotonic() + LOOP_MAX_SECONDS
        while (not self.stopping.is_set() and time.monotonic() < deadline
               and len(self.responses) < LOOP_MAX_REQUESTS):
            try:
                self.responses.append(self.stack.request(
                    'GET', '/api/v1/agents', host=self.tenant.slug,
                    token=self.tenant.token, timeout=15))
            except OSError as e:
                self.errors.append(e)

    def stop(self):
        self.stopping.set()
        self.join(LOOP_MAX_SECONDS + 20)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


class Call(threading.Thread):
    """Runs one call in a thread and keeps its result (or exception) and
    when it returned."""

    def __init__(self, function, *args, **kwargs):
        super().__init__(daemon=True)
        self.call = (function, args, kwargs)
        self.result = None
        self.error = None
        self.returned_at = None

    def run(self):
        function, args, kwargs = self.call
        try:
            self.result = function(*args, **kwargs)
        except Exception as e:      # reported by outcome()
            self.error = e
        self.returned_at = time.monotonic()

    def outcome(self, timeout):
        """The call's result, once it returned within timeout seconds."""
        self.join(timeout)
        if self.is_alive():
            raise AssertionError('the call did not return in %d s' % timeout)
        if self.error is not None:
            raise self.error
        return self.result


class FaultTestCase(StackTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant = cls.stack.new_tenant('faults')
        cls.agent = cls.stack.request(
            'POST', '/api/v1/agents', host=cls.tenant.slug,
            token=cls.tenant.token,
            json={'name': 'steady', 'role': 'Worker', 'goal': 'Serve'})
        if cls.agent.status != 201:
            raise AssertionError(cls.agent)

    def setUp(self):
        # Every test starts from a serving stack with all its workers.
        self.assertTrue(self.wait_serving(20), 'the stack does not serve')
        workers = int(self.stack.conf['workers'])
        self.assertTrue(wait_for(
            lambda: len(self.stack.crewd_pids()[1]) == workers, 10))

    def get(self, timeout=15):
        return self.stack.request('GET', '/api/v1/agents',
                                  host=self.tenant.slug,
                                  token=self.tenant.token, timeout=timeout)

    def wait_serving(self, timeout):
        def ok():
            try:
                return self.get(timeout=5).status == 200
            except OSError:
                return False
        return wait_for(ok, timeout, 0.1)

    def assertAllOk(self, responses):
        bad = [r for r in responses if r.status != 200]
        self.assertEqual(bad, [], '%d of %d requests failed' % (
            len(bad), len(responses)))

    def crewd_log_since(self, offset):
        return self.stack.crewd_log()[offset:]

    def wait_logged(self, offset, text, timeout):
        """True once crewd logged text after offset."""
        return wait_for(lambda: text in self.crewd_log_since(offset),
                        timeout)


class WorkerFaultTest(FaultTestCase):

    def test_killed_worker_is_replaced_and_no_later_request_fails(self):
        master, workers = self.stack.crewd_pids()
        victim = workers[0]
        before = [self.get() for _ in range(20)]
        self.assertAllOk(before)

        os.kill(victim, signal.SIGKILL)
        after = []
        deadline = time.monotonic() + 30
        while len(after) < 40 and time.monotonic() < deadline:
            after.append(self.get())
        self.assertEqual(len(after), 40)
        self.assertAllOk(after)

        def replaced():
            m, w = self.stack.crewd_pids()
            return (m, w) if victim not in w and len(w) == len(workers) \
                else None
        got = wait_for(replaced, 10)
        self.assertTrue(got, 'no replacement for worker %d: %r' % (
            victim, self.stack.crewd_pids()))
        self.assertEqual(got[0], master)
        self.assertEqual(set(got[1]) & set(workers), set(workers) - {victim})
        self.assertAllOk([self.get() for _ in range(10)])

    def test_sighup_replaces_the_workers_and_no_request_fails(self):
        master, workers = self.stack.crewd_pids()
        with RequestLoop(self.stack, self.tenant) as loop:
            time.sleep(0.5)
            self.stack.reload_crewd()

            def replaced():
                m, w = self.stack.crewd_pids()
                return w if len(w) == len(workers) and \
                    not set(w) & set(workers) else None
            new_workers = wait_for(replaced, 15)
            time.sleep(0.5)
        self.assertEqual(loop.errors, [])
        self.assertGreater(len(loop.responses), 10)
        self.assertAllOk(loop.responses)
        self.assertTrue(new_workers, 'workers not replaced: %r -> %r' % (
            workers, self.stack.crewd_pids()[1]))
        self.assertEqual(self.stack.crewd_pids()[0], master)
        for pid in workers:
            self.assertFalse(pid_alive(pid), 'old worker %d lives' % pid)


class DatabaseFaultTest(FaultTestCase):

    def test_postgres_restart_answers_503_at_worst_and_recovers(self):
        master, workers = self.stack.crewd_pids()
        with RequestLoop(self.stack, self.tenant) as loop:
            time.sleep(0.5)
            self.stack.restart_postgres(mode='fast')
            restarted = time.monotonic()
            recovered = self.wait_serving(10)
            recovery_seconds = time.monotonic() - restarted
            time.sleep(0.5)

        self.assertTrue(recovered, 'no 200 within 10 s of the restart')
        self.assertLess(recovery_seconds, 10)
        self.assertEqual(loop.errors, [])
        self.assertGreater(len(loop.responses), 10)
        statuses = {r.status for r in loop.responses}
        self.assertTrue(statuses <= {200, 503}, statuses)
        for resp in loop.responses:
            if resp.status == 503:
                self.assertProblem(resp, 503)
        self.assertEqual(loop.responses[-1].status, 200)
        self.assertEqual(self.stack.crewd_pids(), (master, workers))

    def test_postgres_down_answers_503_then_recovers(self):
        master, workers = self.stack.crewd_pids()
        self.stack.stop_postgres(mode='fast')
        try:
            for _ in range(2 * len(workers)):
                self.assertProblem(self.get(), 503)
            resp = self.stack.request('GET', '/readyz')
            self.assertStatus(resp, 503)
            self.assertStatus(self.stack.request('GET', '/healthz'), 200)
        finally:
            self.stack.start_postgres()
        self.assertTrue(self.wait_serving(10))
        self.assertStatus(self.stack.request('GET', '/readyz'), 200)
        self.assertEqual(self.stack.crewd_pids(), (master, workers))


class ShutdownTest(FaultTestCase):
    # A stack of its own: this test stops crewd.
    stack_options = {'shutdown_timeout': 5}

    def test_sigterm_stops_master_and_workers_and_removes_the_socket(self):
        master, workers = self.stack.crewd_pids()
        listen = self.stack.conf['listen']
        self.assertTrue(os.path.exists(listen))

        started = time.monotonic()
        status = self.stack.stop_crewd(timeout=30)
        elapsed = time.monotonic() - started

        self.assertEqual(status, 0)
        self.assertLess(elapsed, 5)
        self.assertFalse(os.path.exists(listen))
        for pid in [master] + workers:
            self.assertFalse(pid_alive(pid), 'process %d lives' % pid)
        resp = self.get()
        self.assertProblem(resp, 503)


class ReloadConfigurationTest(FaultTestCase):
    # A stack of its own: these tests rewrite crewd's configuration.
    stack_options = {'workers': 2}

    def test_sighup_rereads_the_configuration(self):
        master, workers = self.stack.crewd_pids()
        self.assertEqual(len(workers), 2)
        offset = len(self.stack.crewd_log())

        self.stack.rewrite_crewd_conf(workers=3)
        self.stack.reload_crewd()

        def replaced():
            w = self.stack.crewd_pids()[1]
            return w if len(w) == 3 and not set(w) & set(workers) else None
        new_workers = wait_for(replaced, 5)
        self.assertTrue(new_workers, 'workers %r -> %r' % (
            workers, self.stack.crewd_pids()[1]))
        self.assertTrue(self.wait_logged(
            offset, 'configuration reloaded; 3 new workers', 5),
            self.crewd_log_since(offset))
        self.assertAllOk([self.get() for _ in range(6)])
        self.assertEqual(self.stack.crewd_pids(), (master, new_workers))
        for pid in workers:
            self.assertFalse(pid_alive(pid), 'old worker %d lives' % pid)

    def test_sighup_with_a_broken_configuration_keeps_the_old_workers(self):
        master, workers = self.stack.crewd_pids()
        offset = len(self.stack.crewd_log())

        self.stack.rewrite_crewd_conf(workers=len(workers) + 1,
                                      no_such_key='1')
        try:
            self.stack.reload_crewd()
            self.assertTrue(self.wait_logged(offset, 'reload refused', 5),
                            self.crewd_log_since(offset))
        finally:
            self.stack.rewrite_crewd_conf(workers=len(workers),
                                          no_such_key=None)

        log = self.crewd_log_since(offset)
        self.assertIn('reload refused, keeping the old configuration: '
                      '%s:' % self.stack.conf_path, log)
        self.assertIn('unknown key "no_such_key"', log)
        self.assertNotIn('configuration reloaded', log)
        self.assertAllOk([self.get() for _ in range(2 * len(workers))])
        self.assertEqual(self.stack.crewd_pids(), (master, workers))


class GracefulStopTest(FaultTestCase):
    # A stack of its own, as this test stops crewd, with an Argon2id
    # cost that makes a login take about half a second on two cores.
    stack_options = {'shutdown_timeout': 5, 'password_ops_limit': 3,
                     'password_mem_limit': 256 << 20}

    def login(self):
        return self.stack.request(
            'POST', '/api/v1/auth/login', host=self.tenant.slug,
            json={'email': self.tenant.email,
                  'password': self.tenant.password})

    def test_sigterm_lets_a_request_in_flight_finish(self):
        master, workers = self.stack.crewd_pids()
        shutdown_timeout = int(self.stack.conf['shutdown_timeout'])
        offset = len(self.stack.crewd_log())

        # The login is surely inside crewd once a worker has spent 50 ms
        # of CPU on it: an idle worker spends none.
        ticks = {pid: cpu_ticks(pid) for pid in workers}
        login = Call(self.login)
        sent = time.monotonic()
        login.start()
        busy = wait_for(lambda: [pid for pid in workers
                                 if cpu_ticks(pid) - ticks[pid] >= 5],
                        10, 0.01)
        self.assertEqual(len(busy), 1, 'no worker is hashing: %r' % busy)

        os.kill(master, signal.SIGTERM)
        stopping = time.monotonic()
        idle = [pid for pid in workers if pid not in busy]
        self.assertTrue(wait_for(
            lambda: not any(pid_alive(pid) for pid in idle), 5),
            'idle workers %r live on' % idle)
        late = Call(self.get)
        late.start()

        try:
            status = self.stack.crewd.wait(shutdown_timeout + 5)
        except subprocess.TimeoutExpired:
            status = None
        stopped = time.monotonic() - stopping

        resp = login.outcome(30)
        body = self.assertJson(resp, 200)
        self.assertIsInstance(body.get('access_token'), str, resp)
        self.assertEqual(len(body['access_token'].split('.')), 3)
        self.assertGreater(login.returned_at, stopping)
        self.assertGreaterEqual(login.returned_at - sent, 0.3)

        self.assertEqual(status, 0)
        self.assertLess(stopped, shutdown_timeout)
        for pid in [master] + workers:
            self.assertFalse(pid_alive(pid), 'process %d lives' % pid)
        log = self.crewd_log_since(offset)
        self.assertIn('POST /api/v1/auth/login -> 200', log)
        self.assertNotIn('killing them', log)

        self.assertProblem(late.outcome(30), 503)
        self.assertProblem(self.get(), 503)


class ClientDisconnectTest(FaultTestCase):
    AGENTS = 50
    GOAL_BYTES = 60000
    BIG_LIST = '/api/v1/agents?limit=50'
    DISCONNECTS = 20

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The module's stack, but a tenant of its own whose list of
        # agents is a few megabytes long.
        cls.big = cls.stack.new_tenant('big')
        for i in range(cls.AGENTS):
            resp = cls.stack.request(
                'POST', '/api/v1/agents', host=cls.big.slug,
                token=cls.big.token,
                json={'name': 'agent %d' % i, 'role': 'Writer',
                      'goal': ('%02d' % i) * (cls.GOAL_BYTES // 2)})
            if resp.status != 201:
                raise AssertionError(resp)

    def send_and_close(self, path):
        """Sends a GET over TLS and closes the connection unread."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        host = self.stack.host_name(self.big.slug)
        raw = socket.create_connection(('127.0.0.1', self.stack.https_port),
                                       10)
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(('GET %s HTTP/1.1\r\nHost: %s:%d\r\n'
                         'Authorization: Bearer %s\r\n\r\n' % (
                             path, host, self.stack.https_port,
                             self.big.token)).encode())

    def test_a_client_that_disconnects_mid_response_costs_nothing(self):
        master, workers = self.stack.crewd_pids()
        offset = len(self.stack.crewd_log())
        full = self.stack.request('GET', self.BIG_LIST, host=self.big.slug,
                                  token=self.big.token)
        self.assertEqual(len(self.assertJson(full, 200)['items']),
                         self.AGENTS)
        self.assertGreater(len(full.body), self.AGENTS * self.GOAL_BYTES)

        for _ in range(self.DISCONNECTS):
            self.send_and_close(self.BIG_LIST)

        resp = self.stack.request('GET', self.BIG_LIST, host=self.big.slug,
                                  token=self.big.token)
        self.assertStatus(resp, 200)
        self.assertEqual(resp.json(), full.json())
        self.assertAllOk([self.get() for _ in range(2 * len(workers))])

        # The workers are counted once every list crewd began is done.
        done = 'tenant=%s: GET /api/v1/agents -> 200' % self.big.slug
        wait_for(lambda: self.crewd_log_since(offset).count(done) >=
                 self.DISCONNECTS + 2, 5)
        self.assertEqual(self.stack.crewd_pids(), (master, workers))
        log = self.crewd_log_since(offset)
        self.assertIn('client went away before the response was sent', log)
        self.assertNotIn('replacing it', log)


if __name__ == '__main__':
    crewtest.main()
