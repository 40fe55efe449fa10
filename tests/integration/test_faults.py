"""Faults under load: a worker killed, PostgreSQL restarted, a reload,
and a graceful stop.  Every request loop is bounded in count and time,
and all traffic goes to nginx on 127.0.0.1."""

import os
import signal
import threading
import time

import crewtest
from crewtest import StackTestCase, pid_alive, wait_for

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


if __name__ == '__main__':
    crewtest.main()
