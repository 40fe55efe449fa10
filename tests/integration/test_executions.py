"""Executions: running a flow, the lifecycle pending -> running ->
succeeded, failed or cancelled, the claim a worker makes, and the tenant
migration that gave executions their updated_at."""

import datetime
import glob
import os
import subprocess
import time

import crewtest
from crewtest import StackTestCase, random_uuid
from stack import SRCDIR

EXECUTION_KEYS = {'id', 'tenant_id', 'flow_id', 'user_id', 'status',
                  'inputs', 'outputs', 'error', 'started_at',
                  'completed_at', 'created_at', 'updated_at'}


def tenant_migrations():
    """[(version, name)] of sql/migrations, as schema_migrations shows them:
    every schema made now is at the last of them."""
    found = []
    for path in glob.glob(os.path.join(SRCDIR, 'sql', 'migrations',
                                       '[0-9]*.up.sql')):
        name = os.path.basename(path)[:-len('.up.sql')]
        found.append((str(int(name.split('_')[0])), name))
    return sorted(found, key=lambda m: int(m[0]))


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))


def make_flow(stack, tenant, is_active=True, name='flow'):
    """A flow of tenant; returns its id.  Written straight into the
    tenant's schema: this is the one place to switch to POST
    /api/v1/flows."""
    return stack.psql_value(
        'INSERT INTO :"schema".flows (tenant_id, name, definition,'
        " is_active) VALUES (:'t', :'name',"
        """ '{"nodes": [], "edges": []}', :'active')"""
        ' RETURNING id',
        schema=stack.tenant_schema(tenant.id), t=tenant.id, name=name,
        active='true' if is_active else 'false')


def add_user(stack, tenant, role):
    """A user of tenant with this role (and the admin's password), logged
    in; returns (user id, token)."""
    email = '%s@%s.test' % (role, tenant.slug)
    user_id = stack.psql_value(
        "INSERT INTO public.users (tenant_id, email, password_hash, role)"
        " SELECT tenant_id, :'email', password_hash, :'role'"
        " FROM public.users WHERE tenant_id = :'t' AND role = 'admin'"
        " RETURNING id", email=email, role=role, t=tenant.id)
    return user_id, stack.login(tenant.slug, email=email)


def admin_id(stack, tenant):
    return stack.psql_value(
        "SELECT id FROM public.users WHERE tenant_id = :'t'"
        " AND role = 'admin'", t=tenant.id)


class ExecutionTestCase(StackTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.use_tenant(cls.stack.new_tenant('exec'))

    @classmethod
    def use_tenant(cls, tenant):
        cls.tenant = tenant
        cls.schema = cls.stack.tenant_schema(tenant.id)
        cls.flow_id = make_flow(cls.stack, tenant)

    def call(self, method, path, token=None, **kwargs):
        return self.stack.request(
            method, path, host=self.tenant.slug,
            token=self.tenant.token if token is None else token, **kwargs)

    def run_flow(self, flow_id=None, token=None, **body):
        resp = self.call('POST', '/api/v1/flows/%s/executions' % (
            flow_id or self.flow_id), token=token, json=body)
        return self.assertJson(resp, 202), resp

    def cancel(self, execution_id, **kwargs):
        return self.call('POST', '/api/v1/executions/%s/cancel' %
                         execution_id, **kwargs)

    def get(self, execution_id):
        return self.call('GET', '/api/v1/executions/' + execution_id)

    def claim(self, slug=None, check=True):
        """crewctl execution claim; returns the id it printed or None."""
        proc = self.stack.crewctl('execution', 'claim', '--tenant',
                                  slug or self.tenant.slug, check=check)
        out = proc.stdout.strip()
        return out or None

    def stored(self, execution_id, columns='status'):
        return self.stack.psql(
            'SELECT %s FROM :"schema".executions WHERE id = :\'id\'' %
            columns, schema=self.schema, id=execution_id)

    def set_status(self, execution_id, status):
        """Moves an execution as a worker would, straight in the table."""
        self.stack.psql(
            'UPDATE :"schema".executions SET status = :\'status\','
            ' started_at = coalesce(started_at, now()),'
            ' completed_at = now(), updated_at = now()'
            ' WHERE id = :\'id\'',
            schema=self.schema, status=status, id=execution_id)

    def count(self):
        return int(self.stack.psql_value(
            'SELECT count(*) FROM :"schema".executions', schema=self.schema))


class FreshTenantTestCase(ExecutionTestCase):
    """Each test gets a tenant of its own, so the oldest pending execution
    of the tenant is always one the test made."""

    def setUp(self):
        super().setUp()
        self.tenant = self.stack.new_tenant('fresh')
        self.schema = self.stack.tenant_schema(self.tenant.id)
        self.flow_id = make_flow(self.stack, self.tenant)


class MigrationTest(ExecutionTestCase):

    def versions(self, schema):
        return self.stack.psql(
            'SELECT version, name FROM :"schema".schema_migrations'
            ' ORDER BY version', schema=schema)

    def test_a_new_tenant_schema_is_at_the_latest_version(self):
        tenant = self.stack.new_tenant('migrated')
        schema = self.stack.tenant_schema(tenant.id)
        latest = tenant_migrations()
        self.assertEqual(latest[:2], [
            ('1', '0001_init'), ('2', '0002_executions_updated_at')])
        self.assertEqual(self.versions(schema), latest)
        self.assertEqual(self.versions('tenant_template'), latest)
        self.assertEqual(self.stack.psql(
            "SELECT is_nullable, column_default FROM"
            " information_schema.columns WHERE table_schema = :'schema'"
            " AND table_name = 'executions'"
            " AND column_name = 'updated_at'", schema=schema),
            [('NO', 'now()')])

    def test_db_migrate_brings_the_template_and_tenants_from_1_to_2(self):
        tenant = self.stack.new_tenant('old')
        schema = self.stack.tenant_schema(tenant.id)
        flow_id = make_flow(self.stack, tenant)
        latest = tenant_migrations()
        downs = []
        for version, name in reversed(latest[1:]):
            with open(os.path.join(SRCDIR, 'sql', 'migrations',
                                   name + '.down.sql')) as f:
                downs.append(f.read() + '\nDELETE FROM schema_migrations'
                             ' WHERE version = %s;' % version)

        # Both schemas back at version 1, through the down migrations,
        # the newest first.
        for target in ('tenant_template', schema):
            self.stack.psql(
                'BEGIN; SET LOCAL search_path = :"schema";\n' +
                '\n'.join(downs) + '\nCOMMIT;', schema=target)
            self.assertEqual(self.versions(target), [('1', '0001_init')])

        # An execution made before the column existed.
        execution_id = self.stack.psql_value(
            'INSERT INTO :"schema".executions (tenant_id, flow_id, user_id,'
            " inputs, created_at) VALUES (:'t', :'flow', :'user', '{}',"
            " '2026-01-02 03:04:05.123456+00') RETURNING id",
            schema=schema, t=tenant.id, flow=flow_id,
            user=admin_id(self.stack, tenant))

        out = self.stack.crewctl('db', 'migrate').stdout
        lines = [line.split() for line in out.splitlines()]
        self.assertIn(['tenant_template', '1', '->', latest[-1][0]], lines,
                      out)
        self.assertIn([tenant.slug, schema, '1', '->', latest[-1][0]], lines,
                      out)
        self.assertIn('schema(s) migrated to version %s' % latest[-1][0],
                      out)

        for target in ('tenant_template', schema):
            self.assertEqual(self.versions(target), latest)
        self.assertEqual(self.stack.psql(
            'SELECT updated_at = created_at FROM :"schema".executions'
            " WHERE id = :'id'", schema=schema, id=execution_id), [('t',)])

        # The old execution now reads like any other.
        token = self.stack.login(tenant.slug)
        resp = self.stack.request('GET', '/api/v1/executions/' +
                                  execution_id, host=tenant.slug,
                                  token=token)
        body = self.assertJson(resp, 200)
        self.assertEqual(body['updated_at'], '2026-01-02T03:04:05.123456Z')
        self.assertTrue(resp.headers.get('ETag'))

    def test_db_migrate_again_changes_nothing(self):
        out = self.stack.crewctl('db', 'migrate').stdout
        self.assertNotIn('->', out)
        self.assertIn('0 schema(s) migrated to version %s'
                      % tenant_migrations()[-1][0], out)


class ExecutionCreateTest(ExecutionTestCase):

    def test_run_answers_202_with_a_pending_execution_and_location(self):
        body, resp = self.run_flow(inputs={'topic': 'tides', 'depth': 2})
        self.assertEqual(set(body), EXECUTION_KEYS)
        self.assertUuid(body['id'])
        self.assertEqual(body['tenant_id'], self.tenant.id)
        self.assertEqual(body['flow_id'], self.flow_id)
        self.assertEqual(body['user_id'], admin_id(self.stack, self.tenant))
        self.assertEqual(body['status'], 'pending')
        self.assertEqual(body['inputs'], {'topic': 'tides', 'depth': 2})
        self.assertIsNone(body['outputs'])
        self.assertIsNone(body['error'])
        self.assertIsNone(body['started_at'])
        self.assertIsNone(body['completed_at'])
        self.assertTimestamp(body['created_at'])
        self.assertEqual(body['created_at'], body['updated_at'])
        self.assertEqual(resp.headers.get('Location'),
                         '/api/v1/executions/' + body['id'])
        self.assertTrue(resp.headers.get('ETag'), resp.headers)

    def test_run_stores_the_execution_in_the_tenants_schema(self):
        body, _ = self.run_flow(inputs={'a': [1, 2]})
        self.assertEqual(
            self.stored(body['id'], 'tenant_id, flow_id, user_id, status,'
                        ' inputs::text, outputs, error, started_at,'
                        ' completed_at'),
            [(self.tenant.id, self.flow_id, body['user_id'], 'pending',
              '{"a": [1, 2]}', None, None, None, None)])

    def test_run_without_a_body_has_empty_inputs(self):
        resp = self.call('POST', '/api/v1/flows/%s/executions' %
                         self.flow_id)
        body = self.assertJson(resp, 202)
        self.assertEqual(body['inputs'], {})
        self.assertEqual(body['status'], 'pending')

    def test_run_with_an_empty_object_has_empty_inputs(self):
        body, _ = self.run_flow()
        self.assertEqual(body['inputs'], {})
        self.assertEqual(self.stored(body['id'], 'inputs::text'),
                         [('{}',)])

    def test_run_of_an_inactive_flow_answers_409(self):
        inactive = make_flow(self.stack, self.tenant, is_active=False)
        before = self.count()
        resp = self.call('POST', '/api/v1/flows/%s/executions' % inactive,
                         json={'inputs': {}})
        problem = self.assertProblem(resp, 409)
        self.assertIn('inactive', problem['detail'])
        self.assertEqual(self.count(), before)

    def test_run_of_an_unknown_flow_answers_404(self):
        before = self.count()
        resp = self.call('POST', '/api/v1/flows/%s/executions' %
                         random_uuid(), json={'inputs': {}})
        self.assertProblem(resp, 404)
        self.assertEqual(self.count(), before)

    def test_run_with_wrong_types_answers_422(self):
        before = self.count()
        for value in ([], 'x', 5, None, True, [{'a': 1}]):
            with self.subTest(inputs=value):
                resp = self.call('POST', '/api/v1/flows/%s/executions' %
                                 self.flow_id, json={'inputs': value})
                self.assertProblem(resp, 422, fields=['/inputs'])
        self.assertEqual(self.count(), before)

    def test_run_with_server_owned_fields_answers_422(self):
        before = self.count()
        for field, value in (('status', 'succeeded'),
                             ('user_id', random_uuid()),
                             ('flow_id', random_uuid()),
                             ('started_at', '2026-01-01T00:00:00Z'),
                             ('completed_at', '2026-01-01T00:00:00Z'),
                             ('outputs', {'answer': 42}),
                             ('error', 'none'),
                             ('id', random_uuid()),
                             ('tenant_id', self.tenant.id),
                             ('created_at', '2026-01-01T00:00:00Z'),
                             ('updated_at', '2026-01-01T00:00:00Z')):
            with self.subTest(field=field):
                resp = self.call('POST', '/api/v1/flows/%s/executions' %
                                 self.flow_id,
                                 json={'inputs': {}, field: value})
                problem = self.assertProblem(resp, 422,
                                             fields=['/' + field])
                self.assertEqual(problem['errors'][0]['message'],
                                 'is set by the server')
        self.assertEqual(self.count(), before)

    def test_run_reports_every_bad_field_at_once(self):
        resp = self.call('POST', '/api/v1/flows/%s/executions' %
                         self.flow_id, json={'inputs': 'x',
                                             'status': 'running',
                                             'priority': 1})
        self.assertProblem(resp, 422, fields=['/inputs', '/status',
                                              '/priority'])

    def test_run_with_an_unknown_field_answers_422(self):
        resp = self.call('POST', '/api/v1/flows/%s/executions' %
                         self.flow_id, json={'input': {}})
        self.assertProblem(resp, 422, fields=['/input'])

    def test_run_with_malformed_json_answers_400(self):
        resp = self.call('POST', '/api/v1/flows/%s/executions' %
                         self.flow_id, body='{"inputs": {',
                         headers={'Content-Type': 'application/json'})
        self.assertProblem(resp, 400)

    def test_run_with_a_body_that_is_not_an_object_answers_422(self):
        resp = self.call('POST', '/api/v1/flows/%s/executions' %
                         self.flow_id, json=[{'inputs': {}}])
        self.assertProblem(resp, 422)

    def test_read_and_change_verbs_on_a_run_answer_405(self):
        for method in ('GET', 'PATCH', 'DELETE'):
            with self.subTest(method=method):
                resp = self.call(method, '/api/v1/flows/%s/executions' %
                                 self.flow_id)
                self.assertProblem(resp, 405)

    def test_executions_cannot_be_patched_or_deleted(self):
        body, _ = self.run_flow()
        for method in ('PATCH', 'DELETE', 'PUT'):
            with self.subTest(method=method):
                resp = self.call(method, '/api/v1/executions/' + body['id'],
                                 json={'status': 'succeeded'})
                self.assertProblem(resp, 405)
        self.assertEqual(self.stored(body['id']), [('pending',)])


class ExecutionReadTest(ExecutionTestCase):

    def test_get_answers_200_with_the_execution_and_its_etag(self):
        created, create_resp = self.run_flow(inputs={'k': 'v'})
        resp = self.get(created['id'])
        self.assertEqual(self.assertJson(resp, 200), created)
        self.assertEqual(resp.headers.get('ETag'),
                         create_resp.headers.get('ETag'))

    def test_get_of_an_unknown_id_answers_404(self):
        self.assertProblem(self.get(random_uuid()), 404)

    def test_non_uuid_id_in_path_answers_404(self):
        for bad in ('not-a-uuid', '123', random_uuid() + '0'):
            with self.subTest(id=bad):
                self.assertProblem(self.get(bad), 404)


class ExecutionListTest(ExecutionTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A tenant of its own with flows a and b and five executions:
        # a b a b a, oldest first.  The first is claimed (running), the
        # second cancelled, the rest stay pending.
        cls.use_tenant(cls.stack.new_tenant('exec-list'))
        cls.flow_a = cls.flow_id
        cls.flow_b = make_flow(cls.stack, cls.tenant, name='b')
        cls.ids = []
        for i in range(5):
            flow = cls.flow_a if i % 2 == 0 else cls.flow_b
            resp = cls.stack.request(
                'POST', '/api/v1/flows/%s/executions' % flow,
                host=cls.tenant.slug, token=cls.tenant.token,
                json={'inputs': {'n': i}})
            if resp.status != 202:
                raise AssertionError(resp)
            cls.ids.append(resp.json()['id'])
            time.sleep(0.002)
        claimed = cls.stack.crewctl('execution', 'claim', '--tenant',
                                    cls.tenant.slug).stdout.strip()
        if claimed != cls.ids[0]:
            raise AssertionError('claimed %r' % claimed)
        resp = cls.stack.request(
            'POST', '/api/v1/executions/%s/cancel' % cls.ids[1],
            host=cls.tenant.slug, token=cls.tenant.token)
        if resp.status != 200:
            raise AssertionError(resp)

    def page(self, query):
        return self.call('GET', '/api/v1/executions' + query)

    def listed(self, query):
        body = self.assertJson(self.page(query), 200)
        return [e['id'] for e in body['items']]

    def walk(self, query):
        """Every page of a list; returns (ids, sizes of the pages)."""
        ids, sizes = [], []
        cursor = None
        while True:
            q = query + ('&cursor=' + cursor if cursor else '')
            body = self.assertJson(self.page(q), 200)
            sizes.append(len(body['items']))
            ids += [e['id'] for e in body['items']]
            cursor = body['next_cursor']
            if cursor is None:
                return ids, sizes
            self.assertLess(len(sizes), 10)

    def test_list_answers_newest_first(self):
        body = self.assertJson(self.page(''), 200)
        self.assertEqual(set(body), {'items', 'next_cursor'})
        self.assertEqual([e['id'] for e in body['items']],
                         list(reversed(self.ids)))
        self.assertIsNone(body['next_cursor'])
        self.assertEqual(set(body['items'][0]), EXECUTION_KEYS)
        self.assertEqual(body['items'][0]['inputs'], {'n': 4})

    def test_list_pages_with_limit_and_cursor(self):
        ids, sizes = self.walk('?limit=2')
        self.assertEqual(sizes, [2, 2, 1])
        self.assertEqual(ids, list(reversed(self.ids)))

    def test_list_filters_on_status(self):
        self.assertEqual(self.listed('?status=pending'),
                         [self.ids[4], self.ids[3], self.ids[2]])
        self.assertEqual(self.listed('?status=running'), [self.ids[0]])
        self.assertEqual(self.listed('?status=cancelled'), [self.ids[1]])
        self.assertEqual(self.listed('?status=succeeded'), [])
        self.assertEqual(self.listed('?status=failed'), [])

    def test_list_filters_on_flow_id(self):
        self.assertEqual(self.listed('?flow_id=' + self.flow_a),
                         [self.ids[4], self.ids[2], self.ids[0]])
        self.assertEqual(self.listed('?flow_id=' + self.flow_b.upper()),
                         [self.ids[3], self.ids[1]])
        self.assertEqual(self.listed('?flow_id=' + random_uuid()), [])

    def test_list_combines_filters(self):
        self.assertEqual(
            self.listed('?flow_id=%s&status=pending' % self.flow_a),
            [self.ids[4], self.ids[2]])
        self.assertEqual(
            self.listed('?status=cancelled&flow_id=%s' % self.flow_a), [])

    def test_list_filter_pages_with_limit_and_cursor(self):
        ids, sizes = self.walk('?flow_id=%s&limit=2' % self.flow_a)
        self.assertEqual(sizes, [2, 1])
        self.assertEqual(ids, [self.ids[4], self.ids[2], self.ids[0]])

    def test_list_with_a_bad_filter_value_answers_400_naming_it(self):
        for query, name in (('?status=done', 'status'),
                            ('?status=Pending', 'status'),
                            ('?status=', 'status'),
                            ('?flow_id=not-a-uuid', 'flow_id'),
                            ('?flow_id=', 'flow_id')):
            with self.subTest(query=query):
                self.assertProblem(self.page(query), 400, fields=[name])

    def test_list_with_a_bad_limit_or_cursor_answers_400(self):
        self.assertProblem(self.page('?limit=0'), 400, fields=['limit'])
        self.assertProblem(self.page('?cursor=garbage'), 400,
                           fields=['cursor'])

    def test_list_with_an_unknown_parameter_answers_400(self):
        self.assertProblem(self.page('?user_id=' + random_uuid()), 400)


class ExecutionCancelTest(FreshTenantTestCase):

    def test_cancel_of_a_pending_execution_answers_200_cancelled(self):
        created, create_resp = self.run_flow()
        time.sleep(0.01)
        resp = self.cancel(created['id'])
        body = self.assertJson(resp, 200)
        self.assertEqual(body, dict(created, status='cancelled',
                                    completed_at=body['completed_at'],
                                    updated_at=body['updated_at']))
        self.assertIsNone(body['started_at'])
        self.assertTimestamp(body['completed_at'])
        self.assertGreater(parse_time(body['updated_at']),
                           parse_time(created['updated_at']))
        self.assertGreaterEqual(parse_time(body['completed_at']),
                                parse_time(created['created_at']))
        self.assertNotEqual(resp.headers.get('ETag'),
                            create_resp.headers['ETag'])
        self.assertEqual(self.get(created['id']).headers.get('ETag'),
                         resp.headers.get('ETag'))
        self.assertEqual(
            self.stored(created['id'], 'status, started_at IS NULL,'
                        ' completed_at IS NOT NULL'),
            [('cancelled', 't', 't')])

    def test_cancel_twice_answers_409(self):
        created, _ = self.run_flow()
        first = self.assertJson(self.cancel(created['id']), 200)
        problem = self.assertProblem(self.cancel(created['id']), 409)
        self.assertEqual(problem['detail'],
                         'cannot cancel a cancelled execution')
        self.assertEqual(self.assertJson(self.get(created['id']), 200),
                         first)

    def test_cancel_of_a_running_execution_keeps_started_at(self):
        created, _ = self.run_flow()
        self.assertEqual(self.claim(), created['id'])
        running = self.assertJson(self.get(created['id']), 200)
        body = self.assertJson(self.cancel(created['id']), 200)
        self.assertEqual(body['status'], 'cancelled')
        self.assertEqual(body['started_at'], running['started_at'])
        self.assertGreaterEqual(parse_time(body['completed_at']),
                                parse_time(body['started_at']))

    def test_cancel_of_a_finished_execution_answers_409(self):
        for status in ('succeeded', 'failed'):
            with self.subTest(status=status):
                created, _ = self.run_flow()
                self.set_status(created['id'], status)
                before = self.stored(created['id'], 'status, updated_at')
                problem = self.assertProblem(self.cancel(created['id']), 409)
                self.assertEqual(problem['detail'],
                                 'cannot cancel a %s execution' % status)
                self.assertEqual(
                    self.stored(created['id'], 'status, updated_at'),
                    before)

    def test_cancel_with_a_stale_if_match_answers_412(self):
        created, resp = self.run_flow()
        old_etag = resp.headers['ETag']
        self.assertEqual(self.claim(), created['id'])

        stale = self.cancel(created['id'], headers={'If-Match': old_etag})
        self.assertProblem(stale, 412)
        self.assertEqual(self.stored(created['id']), [('running',)])

        current = self.get(created['id']).headers['ETag']
        self.assertNotEqual(current, old_etag)
        matched = self.cancel(created['id'], headers={'If-Match': current})
        self.assertEqual(self.assertJson(matched, 200)['status'],
                         'cancelled')

    def test_cancel_with_the_current_if_match_answers_200(self):
        created, resp = self.run_flow()
        matched = self.cancel(created['id'],
                              headers={'If-Match': resp.headers['ETag']})
        self.assertEqual(self.assertJson(matched, 200)['status'],
                         'cancelled')

    def test_cancel_with_an_empty_object_answers_200(self):
        created, _ = self.run_flow()
        resp = self.cancel(created['id'], json={})
        self.assertEqual(self.assertJson(resp, 200)['status'], 'cancelled')

    def test_cancel_with_a_field_answers_422_and_changes_nothing(self):
        created, _ = self.run_flow()
        for body, field in (({'reason': 'too slow'}, '/reason'),
                            ({'status': 'cancelled'}, '/status')):
            with self.subTest(body=body):
                self.assertProblem(self.cancel(created['id'], json=body),
                                   422, fields=[field])
        self.assertEqual(self.stored(created['id']), [('pending',)])

    def test_cancel_of_an_unknown_id_answers_404(self):
        self.assertProblem(self.cancel(random_uuid()), 404)


class ClaimTest(FreshTenantTestCase):

    def test_claim_takes_the_oldest_pending_execution(self):
        first, _ = self.run_flow(inputs={'n': 1})
        time.sleep(0.002)
        second, _ = self.run_flow(inputs={'n': 2})

        self.assertEqual(self.claim(), first['id'])
        body = self.assertJson(self.get(first['id']), 200)
        self.assertEqual(body['status'], 'running')
        self.assertTimestamp(body['started_at'])
        self.assertIsNone(body['completed_at'])
        self.assertGreater(parse_time(body['updated_at']),
                           parse_time(first['updated_at']))
        self.assertEqual(self.stored(second['id']), [('pending',)])

        self.assertEqual(self.claim(), second['id'])
        self.assertIsNone(self.claim())

    def test_claim_prints_nothing_when_nothing_is_pending(self):
        proc = self.stack.crewctl('execution', 'claim', '--tenant',
                                  self.tenant.slug)
        self.assertEqual((proc.returncode, proc.stdout), (0, ''))

    def test_claim_skips_executions_that_are_not_pending(self):
        cancelled, _ = self.run_flow()
        self.assertJson(self.cancel(cancelled['id']), 200)
        finished, _ = self.run_flow()
        self.set_status(finished['id'], 'succeeded')
        pending, _ = self.run_flow()
        self.assertEqual(self.claim(), pending['id'])
        self.assertIsNone(self.claim())
        self.assertEqual(self.stored(cancelled['id']), [('cancelled',)])
        self.assertEqual(self.stored(finished['id']), [('succeeded',)])

    def test_claim_takes_only_the_named_tenants_executions(self):
        other = self.stack.new_tenant('claim-other')
        theirs = self.stack.request(
            'POST', '/api/v1/flows/%s/executions' % make_flow(self.stack,
                                                              other),
            host=other.slug, token=other.token, json={})
        theirs = self.assertJson(theirs, 202)
        self.assertIsNone(self.claim())
        self.assertEqual(self.claim(other.slug), theirs['id'])

    def test_claim_for_an_unknown_tenant_fails(self):
        proc = self.stack.crewctl('execution', 'claim', '--tenant',
                                  'no-such-tenant', check=False)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stdout, '')
        self.assertIn('no such tenant', proc.stderr)

    def test_claim_without_a_tenant_is_a_usage_error(self):
        proc = self.stack.crewctl('execution', 'claim', check=False)
        self.assertEqual(proc.returncode, 2)

    def test_claim_skips_a_row_another_transaction_holds(self):
        first, _ = self.run_flow()
        time.sleep(0.002)
        second, _ = self.run_flow()
        tools = self.stack.tools
        holder = subprocess.Popen(
            [tools['psql'], '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
             '-h', self.stack.pg_sock, '-p', str(self.stack.pg_port),
             '-U', 'crewd_owner', '-d', 'crewd'],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        try:
            holder.stdin.write(
                'BEGIN;\nSELECT id FROM %s.executions WHERE id = \'%s\''
                ' FOR UPDATE;\n' % (self.schema, first['id']))
            holder.stdin.flush()
            self.assertEqual(holder.stdout.readline().strip(), first['id'])

            # Not blocked by the lock, and not taking the held row.
            started = time.monotonic()
            self.assertEqual(self.claim(), second['id'])
            self.assertLess(time.monotonic() - started, 10)
            self.assertIsNone(self.claim())
        finally:
            holder.stdin.write('ROLLBACK;\n')
            holder.stdin.close()
            holder.wait(30)
        self.assertEqual(self.claim(), first['id'])

    def test_concurrent_claims_never_take_the_same_execution(self):
        pending = set()
        for i in range(12):
            body, _ = self.run_flow(inputs={'n': i})
            pending.add(body['id'])

        cmd = [self.stack.tools['crewctl'], '-c', self.stack.conf_path,
               'execution', 'claim', '--tenant', self.tenant.slug]
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for _ in range(16)]
        claimed = []
        for proc in procs:
            out, err = proc.communicate(timeout=60)
            self.assertEqual(proc.returncode, 0, err)
            if out.strip():
                claimed.append(out.strip())

        self.assertEqual(len(claimed), len(set(claimed)), claimed)
        self.assertEqual(set(claimed), pending)
        self.assertEqual(self.stack.psql(
            'SELECT status, count(*), count(started_at)'
            ' FROM :"schema".executions GROUP BY status',
            schema=self.schema), [('running', '12', '12')])


class ExecutionIsolationTest(ExecutionTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other = cls.stack.new_tenant('exec-other')
        cls.other_flow = make_flow(cls.stack, cls.other)

    def other_execution(self):
        resp = self.stack.request(
            'POST', '/api/v1/flows/%s/executions' % self.other_flow,
            host=self.other.slug, token=self.other.token, json={})
        return self.assertJson(resp, 202)

    def test_running_another_tenants_flow_answers_404(self):
        before = self.count()
        foreign = self.call('POST', '/api/v1/flows/%s/executions' %
                            self.other_flow, json={'inputs': {}})
        unknown = self.call('POST', '/api/v1/flows/%s/executions' %
                            random_uuid(), json={'inputs': {}})
        self.assertProblem(foreign, 404)
        self.assertSameProblem(foreign, unknown)
        self.assertEqual(self.count(), before)

    def test_another_tenants_execution_answers_404_for_every_verb(self):
        theirs = self.other_execution()
        for method, suffix in (('GET', ''), ('POST', '/cancel')):
            with self.subTest(method=method, suffix=suffix):
                foreign = self.call(method, '/api/v1/executions/%s%s' % (
                    theirs['id'], suffix))
                unknown = self.call(method, '/api/v1/executions/%s%s' % (
                    random_uuid(), suffix))
                self.assertProblem(foreign, 404)
                self.assertSameProblem(foreign, unknown)

        resp = self.stack.request('GET', '/api/v1/executions/' +
                                  theirs['id'], host=self.other.slug,
                                  token=self.other.token)
        self.assertEqual(self.assertJson(resp, 200), theirs)

    def test_list_holds_only_the_tenants_own_executions(self):
        theirs = self.other_execution()
        mine, _ = self.run_flow()
        ids = [e['id'] for e in self.assertJson(
            self.call('GET', '/api/v1/executions?limit=100'), 200)['items']]
        self.assertIn(mine['id'], ids)
        self.assertNotIn(theirs['id'], ids)
        self.assertEqual(self.assertJson(
            self.call('GET', '/api/v1/executions?flow_id=' +
                      self.other_flow), 200),
            {'items': [], 'next_cursor': None})

    def test_another_tenants_token_answers_401(self):
        resp = self.call('GET', '/api/v1/executions',
                         token=self.other.token)
        self.assertProblem(resp, 401)


class ExecutionRoleTest(ExecutionTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.viewer_id, cls.viewer = add_user(cls.stack, cls.tenant, 'viewer')
        cls.member_id, cls.member = add_user(cls.stack, cls.tenant, 'member')

    def test_viewer_reads_but_may_not_run_or_cancel(self):
        created, _ = self.run_flow()
        before = self.count()
        self.assertJson(self.call('GET', '/api/v1/executions',
                                  token=self.viewer), 200)
        self.assertJson(self.call('GET', '/api/v1/executions/' +
                                  created['id'], token=self.viewer), 200)
        self.assertProblem(self.call(
            'POST', '/api/v1/flows/%s/executions' % self.flow_id,
            token=self.viewer, json={}), 403)
        self.assertProblem(self.cancel(created['id'], token=self.viewer),
                           403)
        self.assertEqual(self.count(), before)
        self.assertEqual(self.stored(created['id']), [('pending',)])

    def test_member_runs_and_owns_the_execution(self):
        body, _ = self.run_flow(token=self.member)
        self.assertEqual(body['user_id'], self.member_id)
        self.assertEqual(self.stored(body['id'], 'user_id'),
                         [(self.member_id,)])

    def test_member_cancels_an_execution_of_another_user(self):
        created, _ = self.run_flow()
        resp = self.cancel(created['id'], token=self.member)
        self.assertEqual(self.assertJson(resp, 200)['status'], 'cancelled')


if __name__ == '__main__':
    crewtest.main()
