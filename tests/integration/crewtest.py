"""The base of the integration tests: one Stack per module, assertions
for the contract's formats, and a main() whose last line counts.

A test module defines TestCase classes derived from StackTestCase; every
class of the module with the same stack_options shares one Stack, which
is stopped when the module's tests are done.  Run a module alone with

    tests/integration/run-python tests/integration/test_agents.py [-k NAME]
"""

import argparse
import os
import re
import signal
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stack import (DEFAULT_PASSWORD, Stack, StackError,  # noqa: E402,F401
                   Unavailable, find_tools, pid_alive, wait_for)

UUID_RE = re.compile(
    r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')
RFC3339_UTC_RE = re.compile(
    r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|\+00:00)$')
SCHEMA_RE = re.compile(r'^tenant_[0-9a-f]{16}$')

_stacks = {}


def module_stack(module, **options):
    """The Stack of this module with these options, started on first use
    and stopped with the module."""
    key = (module, tuple(sorted(options.items())))
    stack = _stacks.get(key)
    if stack is None:
        name = module if not options else '%s%r' % (module, options)
        stack = Stack(name=name, **options)
        try:
            stack.start()
        except Exception:
            print(stack.diagnostics(), flush=True)
            stack.close()
            raise
        except BaseException:
            stack.close()
            raise
        _stacks[key] = stack
        unittest.addModuleCleanup(_close_stack, key)
    return stack


def _close_stack(key):
    stack = _stacks.pop(key, None)
    if stack is not None:
        stack.close()


def random_uuid():
    return str(uuid.uuid4())


class StackTestCase(unittest.TestCase):
    """A test case with self.stack; stack_options go to Stack()."""

    stack_options = {}
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.stack = module_stack(cls.__module__, **cls.stack_options)

    # -- assertions ----------------------------------------------------

    def assertStatus(self, resp, status):
        self.assertEqual(resp.status, status, resp)

    def assertJson(self, resp, status):
        """resp has this status and a JSON body; returns the body."""
        self.assertStatus(resp, status)
        self.assertEqual(resp.media_type, 'application/json', resp)
        return resp.json()

    def assertProblem(self, resp, status, fields=None):
        """resp is an RFC 9457 problem with this status; with fields,
        its errors name exactly those fields (JSON pointers like
        "/slug", or query parameter names).  Returns the body."""
        self.assertStatus(resp, status)
        self.assertEqual(resp.media_type, 'application/problem+json', resp)
        body = resp.json()
        self.assertIsInstance(body, dict, resp)
        for key in ('type', 'title', 'detail'):
            self.assertIsInstance(body.get(key), str, resp)
            self.assertTrue(body[key], resp)
        self.assertEqual(body.get('status'), status, resp)
        errors = body.get('errors', [])
        self.assertIsInstance(errors, list, resp)
        for e in errors:
            self.assertIsInstance(e.get('field'), str, resp)
            self.assertIsInstance(e.get('message'), str, resp)
            self.assertTrue(e['message'], resp)
        if fields is not None:
            self.assertEqual(sorted(set(e['field'] for e in errors)),
                             sorted(set(fields)), resp)
        return body

    def assertSameProblem(self, first, second):
        """Two problem responses that tell a client the same thing (the
        request id, which names the request, aside)."""
        self.assertEqual(first.status, second.status)
        self.assertEqual(first.media_type, second.media_type)
        a, b = first.json(), second.json()
        a.pop('request_id', None)
        b.pop('request_id', None)
        self.assertEqual(a, b)

    def snapshot(self, tenant):
        """What a hostile request must leave as it was: crewd's master
        and worker pids, and the tenant's stored data."""
        return self.stack.crewd_pids(), self.stack.tenant_state(tenant.id)

    def assertUnharmed(self, snapshot, tenant):
        """No crewd process died or was replaced, every worker still
        answers (twice as many requests as workers, through nginx), and
        the tenant's stored data is as in snapshot."""
        pids, state = snapshot
        self.assertEqual(self.stack.crewd_pids(), pids)
        for _ in range(2 * len(pids[1])):
            resp = self.stack.request('GET', '/api/v1/agents',
                                      host=tenant.slug, token=tenant.token)
            self.assertEqual(resp.status, 200, resp)
        self.assertEqual(self.stack.crewd_pids(), pids)
        self.assertEqual(self.stack.tenant_state(tenant.id), state)

    def assertUuid(self, value):
        self.assertIsInstance(value, str)
        self.assertRegex(value, UUID_RE)

    def assertTimestamp(self, value):
        self.assertIsInstance(value, str)
        self.assertRegex(value, RFC3339_UTC_RE)


# ---------------------------------------------------------------------
# Running a module.
# ---------------------------------------------------------------------

class _Result(unittest.TextTestResult):
    """Counts tests (not subtests) and prints the stacks' logs when one
    fails."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passed = 0
        self.failed_ids = set()

    def _diagnose(self, test):
        if test.id() in self.failed_ids:
            return
        self.failed_ids.add(test.id())
        for stack in list(_stacks.values()):
            self.stream.write('\n%s\n' % stack.diagnostics())
            self.stream.flush()

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._diagnose(test)

    def addError(self, test, err):
        super().addError(test, err)
        self._diagnose(test)

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._diagnose(test)

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.failed_ids.add(test.id())


def _terminate(signum, frame):
    # make's harness or a user stops the run: unwind, so every Stack
    # stops what it started.
    raise SystemExit(128 + signum)


def main():
    module = sys.modules['__main__']
    name = os.path.splitext(os.path.basename(module.__file__))[0]
    parser = argparse.ArgumentParser(prog=name)
    parser.add_argument('-k', dest='patterns', action='append',
                        help='run only tests whose name contains this')
    parser.add_argument('-q', dest='quiet', action='store_true')
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)

    required = os.environ.get('CREWD_REQUIRE_INTEGRATION') == '1'
    try:
        find_tools()
    except Unavailable as e:
        if required:
            print('%s: cannot run: %s' % (name, e))
            print('%s: 0 passed, 1 failed' % name)
            sys.exit(1)
        print('%s: skipped: %s' % (name, e))
        sys.exit(77)

    loader = unittest.TestLoader()
    if args.patterns:
        loader.testNamePatterns = ['*%s*' % p for p in args.patterns]
    suite = loader.loadTestsFromModule(module)
    runner = unittest.TextTestRunner(stream=sys.stdout,
                                     verbosity=1 if args.quiet else 2,
                                     resultclass=_Result)
    result = runner.run(suite)

    # Errors of setUpClass and module cleanups are not tests, but count
    # as failures.
    failed = len(result.failed_ids)
    skipped = len(result.skipped)
    line = '%s: %d passed, %d failed' % (name, result.passed, failed)
    if skipped:
        line += ', %d skipped' % skipped
    print(line, flush=True)
    sys.exit(0 if failed == 0 and result.passed > 0 else 1)
