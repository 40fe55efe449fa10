"""Faults under load: a worker killed, PostgreSQL restarted, a reload,
a broken configuration, a graceful stop and clients that go away.
Every request loop is bounded in count and time, and all traffic goes
to nginx on 127.0.0.1."""

import os
import resource
import signal
import socket
import ssl
import subprocess
import threading
import time

import crewtest
from crewtest import StackTestCase, pid_alive, wait_for
from stack import (FCGI_END_REQUEST, FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT,
                   cpu_ticks, fcgi_begin, fcgi_pairs, fcgi_records,
                   fcgi_stream, process_status)

# How long a request may take, at worst, while PostgreSQL restarts: far
# below nginx's fastcgi_read_timeout (30 s) and the clients' 15 s.
RESTART_REQUEST_MAX_SECONDS = 5

LOOP_MAX_REQUESTS = 5000
LOOP_MAX_SECONDS = 60


class RequestLoop(threading.Thread):
    """GETs the tenant's agents until stopped, at most LOOP_MAX_REQUESTS
    times and LOOP_MAX_SECONDS long, keeping every response and how long
    each request took."""

    def __init__(self, stack, tenant):
        super().__init__(daemon=True)
        self.stack = stack
        self.tenant = tenant
        self.stopping = threading.Event()
        self.responses = []
        self.errors = []
        self.durations = []

    def run(self):
        deadline = time.monotonic() + LOOP_MAX_SECONDS
        while (not self.stopping.is_set() and time.monotonic() < deadline
               and len(self.responses) < LOOP_MAX_REQUESTS):
            started = time.monotonic()
            try:
                self.responses.append(self.stack.request(
                    'GET', '/api/v1/agents', host=self.tenant.slug,
                    token=self.tenant.token, timeout=15))
            except OSError as e:
                self.errors.append(e)
            self.durations.append(time.monotonic() - started)

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

    def kill_under_load(self, sig):
        """Kills a worker with sig while two clients keep asking; returns
        the clients' responses and the replacement's pid."""
        master, workers = self.stack.crewd_pids()
        victim = workers[0]
        offset = len(self.stack.crewd_log())
        # A dying worker dumps no core anywhere.
        resource.prlimit(victim, resource.RLIMIT_CORE, (0, 0))
        loops = [RequestLoop(self.stack, self.tenant) for _ in range(2)]
        for loop in loops:
            loop.start()
        time.sleep(0.5)
        os.kill(victim, sig)

        def replaced():
            m, w = self.stack.crewd_pids()
            return w if victim not in w and len(w) == len(workers) else None
        new_workers = wait_for(replaced, 10)
        time.sleep(1)
        for loop in loops:
            loop.stop()

        self.assertTrue(new_workers, 'no replacement for worker %d' % victim)
        self.assertEqual(self.stack.crewd_pids()[0], master)
        self.assertEqual(set(new_workers) & set(workers),
                         set(workers) - {victim})
        self.assertTrue(self.wait_logged(
            offset, 'worker %d killed by signal %d; replacing it' % (
                victim, sig), 5), self.crewd_log_since(offset))
        responses = [r for loop in loops for r in loop.responses]
        self.assertEqual([e for loop in loops for e in loop.errors], [])
        self.assertGreater(len(responses), 20)
        # The victim's request in flight, if it had one, is all it cost.
        failed = [r for r in responses if r.status != 200]
        self.assertLessEqual(len(failed), 1, failed)
        for resp in failed:
            self.assertProblem(resp, 503)
        for loop in loops:
            self.assertEqual(loop.responses[-1].status, 200)
        self.assertAllOk([self.get() for _ in range(2 * len(workers))])

    def test_a_worker_that_segfaults_under_load_is_replaced(self):
        if os.environ.get('CREWD_SANITIZED') == 'yes':
            # AddressSanitizer turns every SIGSEGV into a report, which
            # fails the run; the SIGKILL test below covers replacement.
            self.skipTest('a sanitizer build reports any SIGSEGV')
        self.kill_under_load(signal.SIGSEGV)

    def test_a_worker_killed_under_load_is_replaced(self):
        self.kill_under_load(signal.SIGKILL)

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

    def test_postgres_restart_under_concurrent_load_hangs_nothing(self):
        master, workers = self.stack.crewd_pids()
        loops = [RequestLoop(self.stack, self.tenant) for _ in range(4)]
        for loop in loops:
            loop.start()
        time.sleep(0.5)
        self.stack.restart_postgres(mode='fast')
        recovered = self.wait_serving(10)
        time.sleep(0.5)
        for loop in loops:
            loop.stop()

        self.assertTrue(recovered, 'no 200 within 10 s of the restart')
        self.assertEqual([e for loop in loops for e in loop.errors], [])
        responses = [r for loop in loops for r in loop.responses]
        self.assertGreater(len(responses), 40)
        statuses = {r.status for r in responses}
        self.assertTrue(statuses <= {200, 503}, statuses)
        for resp in responses:
            if resp.status == 503:
                self.assertProblem(resp, 503)
                retry = resp.headers.get('Retry-After', '')
                self.assertTrue(retry.isdigit() and int(retry) > 0, resp)
        for loop in loops:
            self.assertEqual(loop.responses[-1].status, 200)
        slowest = max(d for loop in loops for d in loop.durations)
        self.assertLess(slowest, RESTART_REQUEST_MAX_SECONDS)
        self.assertEqual(self.stack.crewd_pids(), (master, workers))

    def test_connections_the_server_closed_are_replaced_unseen(self):
        """A worker's connection that the server closed while it was idle
        (a restart, a terminated backend) is found closed before the
        next request uses it, and replaced: that request is served, not
        answered 503."""
        master, workers = self.stack.crewd_pids()
        for _ in range(3):
            for _ in range(4 * len(workers)):
                self.assertStatus(self.get(), 200)
            ended = self.stack.psql(
                'SELECT pg_terminate_backend(pid) FROM pg_stat_activity'
                " WHERE usename = 'crewd' AND backend_type ="
                " 'client backend' AND pid <> pg_backend_pid()",
                superuser=True)
            self.assertGreaterEqual(len(ended), len(workers))
            time.sleep(0.2)     # the backends are gone
            for _ in range(4 * len(workers)):
                self.assertStatus(self.get(), 200)
            self.assertStatus(self.stack.request('GET', '/readyz'), 200)
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

    def test_every_crewd_process_ignores_sigpipe(self):
        master, workers = self.stack.crewd_pids()
        for pid in [master] + workers + self.stack.shipper_pids():
            ignored = int(process_status(pid)['SigIgn'], 16)
            self.assertTrue(ignored & 1 << (signal.SIGPIPE - 1), pid)

    def test_a_peer_that_closes_the_socket_mid_response_costs_nothing(self):
        master, workers = self.stack.crewd_pids()
        offset = len(self.stack.crewd_log())
        params = self.stack.fcgi_params('GET', self.BIG_LIST, self.big.slug,
                                        self.big.token)
        request = fcgi_begin() + fcgi_stream(FCGI_PARAMS,
                                             fcgi_pairs(params)) + \
            fcgi_stream(FCGI_STDIN, b'')

        for _ in range(5):
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(10)
                s.connect(self.stack.conf['listen'])
                s.sendall(request)
                first = s.recv(100)
                self.assertEqual(first[:2], b'\x01\x06')  # STDOUT
        gone = 'client went away before the response was sent'
        self.assertTrue(wait_for(
            lambda: self.crewd_log_since(offset).count(gone) >= 5, 10),
            self.crewd_log_since(offset))

        # A reader that stays gets the whole list, as ever.
        resp, raw = self.stack.fcgi_request('GET', self.BIG_LIST,
                                            host=self.big.slug,
                                            token=self.big.token)
        self.assertEqual(len(self.assertJson(resp, 200)['items']),
                         self.AGENTS)
        self.assertEqual(fcgi_records(raw)[-1],
                         (FCGI_END_REQUEST, 1, b'\0' * 8))
        self.assertGreater(sum(1 for r in fcgi_records(raw)
                               if r[0] == FCGI_STDOUT), 40)
        self.assertAllOk([self.get() for _ in range(2 * len(workers))])
        self.assertEqual(self.stack.crewd_pids(), (master, workers))
        self.assertNotIn('replacing it', self.crewd_log_since(offset))

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


class LogDiskFullTest(FaultTestCase):
    # A stack of its own whose log (stderr) is /dev/full: every write
    # fails with ENOSPC, as on a full disk.
    stack_options = {'crewd_stderr': '/dev/full'}

    def test_crewd_logs_into_a_full_disk(self):
        master, workers = self.stack.crewd_pids()
        for pid in [master] + workers:
            self.assertEqual(os.readlink('/proc/%d/fd/2' % pid), '/dev/full')

    def test_the_server_keeps_answering_with_its_log_disk_full(self):
        master, workers = self.stack.crewd_pids()
        t = self.stack.new_tenant('full')
        call = lambda *a, **kw: self.stack.request(*a, host=t.slug,
                                                   token=t.token, **kw)
        created = self.assertJson(call('POST', '/api/v1/agents', json={
            'name': 'Logged nowhere', 'role': 'R', 'goal': 'G'}), 201)
        self.assertEqual(self.assertJson(call(
            'GET', '/api/v1/agents/' + created['id']), 200), created)
        self.assertProblem(call('POST', '/api/v1/agents', json={}), 422)
        self.assertProblem(call('GET', '/api/v1/agents/' +
                                crewtest.random_uuid()), 404)
        self.assertProblem(self.stack.request(
            'GET', '/api/v1/agents', host=t.slug, token='x.y.z'), 401)
        self.assertAllOk([call('GET', '/api/v1/agents')
                          for _ in range(4 * len(workers))])
        self.assertEqual(self.stack.crewd_pids(), (master, workers))

    def test_a_worker_dies_and_is_replaced_with_the_log_disk_full(self):
        master, workers = self.stack.crewd_pids()
        os.kill(workers[0], signal.SIGKILL)

        def replaced():
            w = self.stack.crewd_pids()[1]
            return w if workers[0] not in w and len(w) == len(workers) \
                else None
        self.assertTrue(wait_for(replaced, 10))
        self.assertAllOk([self.get() for _ in range(4 * len(workers))])
        self.assertEqual(self.stack.crewd_pids()[0], master)


LOG_FIFO = os.path.join('/tmp', 'crewd-test-log-%d.fifo' % os.getpid())


class LogPipeClosedTest(FaultTestCase):
    """crewd's log is a pipe (as under a supervisor) whose reader goes
    away: each log line then raises SIGPIPE, which every crewd process
    ignores."""
    stack_options = {'crewd_stderr': LOG_FIFO}

    @classmethod
    def setUpClass(cls):
        if os.path.exists(LOG_FIFO):
            os.unlink(LOG_FIFO)
        os.mkfifo(LOG_FIFO, 0o600)
        cls.reader = os.open(LOG_FIFO, os.O_RDONLY | os.O_NONBLOCK)
        cls.reading = threading.Event()
        cls.reading.set()
        cls.drain = threading.Thread(target=cls.drain_log, daemon=True)
        cls.drain.start()
        try:
            super().setUpClass()
        finally:
            os.unlink(LOG_FIFO)

    @classmethod
    def drain_log(cls):
        while cls.reading.is_set():
            try:
                os.read(cls.reader, 65536)
            except BlockingIOError:
                time.sleep(0.01)

    @classmethod
    def tearDownClass(cls):
        cls.stop_reading()
        super().tearDownClass()

    @classmethod
    def stop_reading(cls):
        if cls.reading.is_set():
            cls.reading.clear()
            cls.drain.join(5)
            os.close(cls.reader)

    def test_the_server_keeps_answering_when_its_log_pipe_closes(self):
        master, workers = self.stack.crewd_pids()
        self.stop_reading()
        t = self.stack.new_tenant('pipe')
        self.assertJson(self.stack.request(
            'POST', '/api/v1/agents', host=t.slug, token=t.token,
            json={'name': 'Unheard', 'role': 'R', 'goal': 'G'}), 201)
        self.assertAllOk([self.get() for _ in range(4 * len(workers))])
        self.assertEqual(self.stack.crewd_pids(), (master, workers))


if __name__ == '__main__':
    crewtest.main()
