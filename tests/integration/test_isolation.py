"""Tenants cannot see or touch each other, whatever host, token or id
they use; and one worker serving both leaves nothing of one tenant's
request on its connection for the next.

The stack runs ONE worker, so every request below goes through the same
process and the same database connection.

The isolation mode comes from CREWD_TEST_ISOLATION: roles (the default)
or schema; test_isolation_schema.py runs this whole module in the schema
mode.  The two differ in one place only, said by the test itself: in the
schema mode a schema-qualified read of another tenant's table succeeds."""

import os

import crewtest
from crewtest import StackTestCase, random_uuid, wait_for

MODE = os.environ.get('CREWD_TEST_ISOLATION', 'roles')


class IsolationTestCase(StackTestCase):
    stack_options = {'workers': 1, 'isolation': MODE}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.a = cls.stack.new_tenant('alpha')
        cls.b = cls.stack.new_tenant('bravo')
        cls.a_schema = cls.stack.tenant_schema(cls.a.id)
        cls.b_schema = cls.stack.tenant_schema(cls.b.id)

    def call(self, tenant, method, path, token=None, **kwargs):
        return self.stack.request(
            method, path, host=tenant.slug,
            token=tenant.token if token is None else token, **kwargs)

    def create_agent(self, tenant, name):
        resp = self.call(tenant, 'POST', '/api/v1/agents', json={
            'name': name, 'role': 'Worker', 'goal': 'Work'})
        return self.assertJson(resp, 201)

    def list_ids(self, tenant):
        body = self.assertJson(
            self.call(tenant, 'GET', '/api/v1/agents?limit=100'), 200)
        return [a['id'] for a in body['items']]

    def stored_names(self, schema):
        return sorted(r[0] for r in self.stack.psql(
            'SELECT name FROM :"schema".agents', schema=schema))

    def connection_states(self):
        """States of crewd's connections (all but this psql's own)."""
        return sorted(r[0] for r in self.stack.psql(
            "SELECT coalesce(state, '') FROM pg_stat_activity "
            "WHERE usename = 'crewd' AND datname = 'crewd' "
            "AND backend_type = 'client backend' "
            "AND pid <> pg_backend_pid()", superuser=True))

    def sessions_discarded(self):
        return self.stack.metric('crewd_database_sessions_discarded_total')

    def assertConnectionsIdle(self):
        """crewd's connections settle to plain idle: no transaction, and
        so no tenant's search path, outlives a request."""
        def settled():
            states = self.connection_states()
            return states if states and set(states) == {'idle'} else None

        states = wait_for(settled, 2.0)
        self.assertTrue(states, 'crewd connections: %r' %
                        self.connection_states())


class CrossTenantTest(IsolationTestCase):

    def test_second_tenant_lists_none_of_the_firsts_agents(self):
        first = self.create_agent(self.a, 'alpha agent')
        self.assertIn(first['id'], self.list_ids(self.a))
        self.assertNotIn(first['id'], self.list_ids(self.b))
        self.assertNotIn('alpha agent', self.stored_names(self.b_schema))

    def test_new_tenant_lists_nothing(self):
        fresh = self.stack.new_tenant('fresh')
        self.create_agent(self.a, 'alpha agent')
        body = self.assertJson(
            self.call(fresh, 'GET', '/api/v1/agents'), 200)
        self.assertEqual(body, {'items': [], 'next_cursor': None})

    def test_first_tenants_token_on_second_tenants_host_answers_401(self):
        for method, path in (('GET', '/api/v1/agents'),
                             ('GET', '/api/v1/users/me'),
                             ('POST', '/api/v1/agents')):
            with self.subTest(method=method, path=path):
                resp = self.call(self.b, method, path, token=self.a.token,
                                 json={'name': 'x', 'role': 'y', 'goal': 'z'}
                                 if method == 'POST' else None)
                self.assertProblem(resp, 401)
        self.assertNotIn('x', self.stored_names(self.b_schema))

    def test_first_tenants_agent_id_on_second_tenants_host_answers_404(self):
        agent = self.create_agent(self.a, 'alpha private')
        path = '/api/v1/agents/' + agent['id']
        unknown = '/api/v1/agents/' + random_uuid()

        for method, body in (('GET', None), ('PATCH', {'goal': 'stolen'}),
                             ('DELETE', None)):
            with self.subTest(method=method):
                theirs = self.call(self.b, method, path, json=body)
                nowhere = self.call(self.b, method, unknown, json=body)
                self.assertProblem(theirs, 404)
                self.assertSameProblem(theirs, nowhere)

        got = self.assertJson(self.call(self.a, 'GET', path), 200)
        self.assertEqual(got, agent)

    def test_unknown_slug_host_answers_404(self):
        for method, path in (('GET', '/api/v1/agents'),
                             ('POST', '/api/v1/auth/login')):
            with self.subTest(method=method, path=path):
                resp = self.stack.request(
                    method, path, host='nosuch-' + random_uuid()[:8],
                    token=self.a.token,
                    json={'email': self.a.email, 'password': self.a.password}
                    if method == 'POST' else None)
                self.assertProblem(resp, 404)

    def test_apex_host_has_no_tenant_endpoints(self):
        for path in ('/api/v1/agents', '/api/v1/users/me',
                     '/api/v1/auth/login'):
            with self.subTest(path=path):
                resp = self.stack.request('GET', path, token=self.a.token)
                self.assertProblem(resp, 404)

    def test_host_outside_the_base_domain_answers_421(self):
        for host in ('example.com', 'a.b.localhost', 'localhost.example',
                     '127.0.0.1'):
            with self.subTest(host=host):
                resp = self.stack.request('GET', '/api/v1/agents',
                                          host=host, token=self.a.token)
                self.assertStatus(resp, 421)

    def test_upper_case_host_reaches_the_same_tenant(self):
        agent = self.create_agent(self.a, 'alpha upper')
        resp = self.stack.request('GET', '/api/v1/agents/' + agent['id'],
                                  host=self.a.slug.upper() + '.LOCALHOST',
                                  token=self.a.token)
        self.assertEqual(self.assertJson(resp, 200)['id'], agent['id'])


class DatabaseIsolationTest(IsolationTestCase):
    """What the database itself enforces, seen from inside a tenant's
    request: the role, the search path and the tenant setting crewd's
    worker switches to, and what they let through."""

    def as_tenant(self, tenant, schema, sql):
        """Runs sql as crewd's login role, inside the very switch the
        worker makes for tenant (lib/tenant.c, tenant_context_enter).
        Returns (rows, None) or (None, the error text)."""
        if MODE == 'roles':
            switch = ("SELECT set_config('search_path', :'schema', true), "
                      "set_config('crewd.tenant_id', :'id', true), "
                      "set_config('role', :'schema', true);")
        else:
            switch = ("SET LOCAL search_path TO %s; "
                      "SET LOCAL crewd.tenant_id TO '%s';" % (
                          schema, tenant.id))
        try:
            rows = self.stack.psql('BEGIN;\n\\o /dev/null\n%s\n\\o\n'
                                   '%s;\nROLLBACK;' % (switch, sql),
                                   as_role='crewd', schema=schema,
                                   id=tenant.id)
            return rows, None
        except Exception as e:      # psql's message: permission denied...
            return None, str(e)

    def test_the_design_guides_isolation_test(self):
        """SELECT * FROM <other tenant's schema>.agents from tenant A's
        context fails with a permission error (roles mode)."""
        self.create_agent(self.b, 'bravo secret')
        rows, error = self.as_tenant(
            self.a, self.a_schema, 'SELECT name FROM %s.agents' %
            self.b_schema)
        if MODE == 'roles':
            self.assertIsNone(rows)
            self.assertIn('permission denied for schema %s' % self.b_schema,
                          error)
        else:
            # The schema mode's known limit: one role for all tenants.
            print('\n  schema mode: a schema-qualified read of another '
                  'tenant succeeds, as documented (docs/isolation.md)')
            self.assertIsNone(error)
            self.assertIn(('bravo secret',), rows)

    def test_other_tenants_schema_cannot_be_written_or_listed(self):
        if MODE != 'roles':
            print('\n  schema mode: other schemas are reachable by name, '
                  'as documented (docs/isolation.md)')
            self.skipTest('schema-qualified access is denied in roles mode '
                          'only')
        before = self.stored_names(self.b_schema)
        for sql in (
                "INSERT INTO %s.agents (name, role, goal) "
                "VALUES ('x', 'y', 'z')" % self.b_schema,
                "UPDATE %s.agents SET name = 'x'" % self.b_schema,
                "DELETE FROM %s.agents" % self.b_schema,
                "TRUNCATE %s.agents" % self.b_schema,
                "CREATE TABLE %s.planted (id int)" % self.b_schema):
            with self.subTest(sql=sql):
                rows, error = self.as_tenant(self.a, self.a_schema, sql)
                self.assertIsNone(rows)
                self.assertRegex(error, 'permission denied')
        rows, error = self.as_tenant(
            self.a, self.a_schema, "SELECT count(*) FROM "
            "information_schema.tables WHERE table_schema = '%s'" %
            self.b_schema)
        self.assertEqual(rows, [('0',)])
        self.assertEqual(self.stored_names(self.b_schema), before)

    def test_own_tables_work_and_ddl_is_refused(self):
        rows, error = self.as_tenant(self.a, self.a_schema,
                                     'SELECT count(*) >= 0 FROM agents')
        self.assertEqual(rows, [('t',)], error)
        for sql in ('CREATE TABLE planted (id int)',
                    'DROP TABLE agents',
                    'TRUNCATE agents',
                    'CREATE TEMP TABLE planted (id int)',
                    'SELECT pg_advisory_lock(1)',
                    "INSERT INTO schema_migrations (version, name) "
                    "VALUES (9999, 'planted')"):
            with self.subTest(sql=sql):
                rows, error = self.as_tenant(self.a, self.a_schema, sql)
                self.assertIsNone(rows)
                self.assertRegex(error, 'permission denied|must be owner')

    def test_users_of_another_tenant_are_invisible(self):
        rows, error = self.as_tenant(
            self.a, self.a_schema,
            'SELECT DISTINCT tenant_id FROM public.users')
        self.assertEqual(rows, [(self.a.id,)], error)
        rows, error = self.as_tenant(
            self.a, self.a_schema,
            "UPDATE public.users SET full_name = 'x' "
            "WHERE tenant_id = '%s' RETURNING id" % self.b.id)
        self.assertEqual(rows, [], error)
        rows, error = self.as_tenant(
            self.a, self.a_schema,
            "INSERT INTO public.users (tenant_id, email, password_hash) "
            "VALUES ('%s', 'planted@b.test', 'x')" % self.b.id)
        self.assertIsNone(rows)
        self.assertIn('row-level security', error)
        rows, error = self.as_tenant(
            self.a, self.a_schema, 'SELECT id FROM public.tenants')
        self.assertEqual(rows, [(self.a.id,)], error)

    def test_login_role_alone_reaches_no_tenant_data(self):
        rows = self.stack.psql(
            "SELECT has_schema_privilege('crewd', :'schema', 'USAGE'), "
            "has_table_privilege('crewd', 'public.users', 'SELECT'), "
            "has_database_privilege('crewd', 'crewd', 'CREATE'), "
            "has_database_privilege('crewd', 'crewd', 'TEMP'), "
            "has_schema_privilege('crewd', 'public', 'CREATE')",
            schema=self.a_schema)
        if MODE == 'roles':
            self.assertEqual(rows, [('f', 'f', 'f', 'f', 'f')])
        else:
            self.assertEqual(rows, [('t', 't', 'f', 'f', 'f')])

    def test_requests_run_as_the_tenant(self):
        """A probe trigger in tenant A's schema records who a real
        request through nginx runs as, and what it can reach."""
        self.install_probe(self.a_schema, self.b_schema)
        self.create_agent(self.a, 'alpha probed')
        probe = self.stack.psql(
            'SELECT who, tenant, path, users, other_schema'
            ' FROM :"schema".probe ORDER BY at DESC LIMIT 1',
            superuser=True, schema=self.a_schema)
        expected_role = self.a_schema if MODE == 'roles' else 'crewd'
        self.assertEqual(probe, [(
            expected_role, self.a.id, self.a_schema, '1',
            'denied' if MODE == 'roles' else 'allowed')])

    def install_probe(self, schema, other_schema):
        self.stack.psql(
            'CREATE TABLE IF NOT EXISTS :"schema".probe ('
            ' at timestamptz DEFAULT clock_timestamp(), who text,'
            ' tenant text, path text, users bigint, other_schema text,'
            ' leftover text, prepared text, cursors text,'
            ' temp_tables bigint, advisory bigint);'
            'GRANT INSERT ON :"schema".probe TO PUBLIC;'
            'CREATE OR REPLACE FUNCTION :"schema".probe() RETURNS trigger'
            ' LANGUAGE plpgsql AS $f$ DECLARE other text; BEGIN'
            ' BEGIN EXECUTE format(\'SELECT count(*) FROM %I.agents\','
            ' ' + "'" + other_schema + "'" + '); other := \'allowed\';'
            ' EXCEPTION WHEN insufficient_privilege THEN'
            ' other := \'denied\'; END;'
            ' INSERT INTO ' + schema + '.probe (who, tenant, path, users,'
            ' other_schema, leftover, prepared, cursors, temp_tables,'
            ' advisory) SELECT current_user,'
            ' current_setting(\'crewd.tenant_id\', true),'
            ' current_setting(\'search_path\'),'
            ' (SELECT count(*) FROM public.users), other,'
            ' current_setting(\'crewd.leftover\', true),'
            ' (SELECT coalesce(string_agg(name, \',\'), \'\')'
            '  FROM pg_prepared_statements'
            '  WHERE name NOT LIKE \'crewd\\_%\'),'
            ' (SELECT coalesce(string_agg(name, \',\'), \'\')'
            '  FROM pg_cursors),'
            ' (SELECT count(*) FROM pg_class'
            '  WHERE relnamespace = pg_my_temp_schema()),'
            ' (SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid()'
            '  AND locktype = \'advisory\');'
            ' RETURN NULL; END $f$;'
            'DROP TRIGGER IF EXISTS probe ON :"schema".audit_outbox;'
            'CREATE TRIGGER probe AFTER INSERT ON :"schema".audit_outbox'
            ' FOR EACH ROW EXECUTE FUNCTION :"schema".probe();',
            superuser=True, schema=schema)


class ConnectionResetTest(IsolationTestCase):

    def plant_leftovers(self, schema):
        """A stand-in for a buggy handler: a trigger on the tenant's
        audit outbox (written by every create) that leaves on the
        session everything a request could: a session setting, a
        prepared statement, a cursor WITH HOLD, a session role, and
        tries a temporary table and a session advisory lock.  For an
        agent named 'fail ...' it then makes the request fail."""
        self.stack.psql(
            'CREATE OR REPLACE FUNCTION :"schema".leave() RETURNS trigger'
            ' LANGUAGE plpgsql AS $f$ BEGIN'
            ' IF NEW.changes::text NOT LIKE \'%leave%\' THEN'
            '  RETURN NULL; END IF;'
            ' PERFORM set_config(\'crewd.leftover\', \'planted\', false);'
            ' PERFORM set_config(\'search_path\', current_setting('
            '  \'search_path\'), false);'
            ' EXECUTE \'PREPARE planted AS SELECT 1\';'
            ' EXECUTE \'DECLARE planted CURSOR WITH HOLD FOR SELECT 1\';'
            ' BEGIN EXECUTE \'CREATE TEMP TABLE planted (id int)\';'
            ' EXCEPTION WHEN insufficient_privilege THEN NULL; END;'
            ' BEGIN PERFORM pg_advisory_lock(42);'
            ' EXCEPTION WHEN insufficient_privilege THEN NULL; END;'
            ' IF NEW.changes::text LIKE \'%fail%\' THEN'
            '  RAISE EXCEPTION \'planted failure\'; END IF;'
            ' PERFORM set_config(\'role\', \'crewd_tenant\', false);'
            ' RETURN NULL; END $f$;'
            'DROP TRIGGER IF EXISTS leave ON :"schema".audit_outbox;'
            'CREATE TRIGGER leave AFTER INSERT ON :"schema".audit_outbox'
            ' FOR EACH ROW EXECUTE FUNCTION :"schema".leave();',
            superuser=True, schema=schema)

    def assertNothingLeftFor(self, tenant, schema, other_schema):
        """tenant's next request (on the same worker and connection)
        sees nothing of the previous one."""
        DatabaseIsolationTest.install_probe(self, schema, other_schema)
        self.create_agent(tenant, 'probe')
        probe = self.stack.psql(
            'SELECT who, tenant, path, leftover, prepared, cursors,'
            ' temp_tables, advisory FROM :"schema".probe'
            ' ORDER BY at DESC LIMIT 1', superuser=True, schema=schema)
        expected_role = schema if MODE == 'roles' else 'crewd'
        self.assertEqual(probe, [(expected_role, tenant.id, schema, '',
                                  '', '', '0', '0')])
        self.assertConnectionsIdle()

    def test_successful_request_leaves_nothing_for_the_next_tenant(self):
        self.plant_leftovers(self.a_schema)
        self.create_agent(self.a, 'leave it all')
        self.assertNothingLeftFor(self.b, self.b_schema, self.a_schema)

    def test_failing_request_leaves_nothing_for_the_next_tenant(self):
        self.plant_leftovers(self.a_schema)
        before = self.stored_names(self.a_schema)
        resp = self.call(self.a, 'POST', '/api/v1/agents', json={
            'name': 'leave and fail', 'role': 'Worker', 'goal': 'Work'})
        self.assertEqual(resp.status, 500, resp)
        self.assertEqual(self.stored_names(self.a_schema), before)
        self.assertNothingLeftFor(self.b, self.b_schema, self.a_schema)

    def test_a_lone_prepared_statement_is_gone_after_a_full_check(self):
        """The check after each request leaves the list of prepared
        statements (it grows with the tenants a worker serves) and of
        cursors to one request in DB_FULL_CHECK_EVERY (64, lib/db.h): a
        statement and a cursor WITH HOLD a request left behind, and
        nothing else, are thrown away by then.  crewd never runs a
        statement it did not prepare, nor fetches from a cursor."""
        self.stack.psql(
            'CREATE OR REPLACE FUNCTION :"schema".alone() RETURNS trigger'
            ' LANGUAGE plpgsql AS $f$ BEGIN'
            ' IF NEW.changes::text LIKE \'%alone%\' THEN'
            '  EXECUTE \'PREPARE planted_alone AS SELECT 1\';'
            '  EXECUTE \'DECLARE planted_alone CURSOR WITH HOLD FOR'
            '  SELECT 1\'; END IF;'
            ' RETURN NULL; END $f$;'
            'DROP TRIGGER IF EXISTS alone ON :"schema".audit_outbox;'
            'CREATE TRIGGER alone AFTER INSERT ON :"schema".audit_outbox'
            ' FOR EACH ROW EXECUTE FUNCTION :"schema".alone();',
            superuser=True, schema=self.a_schema)
        discarded = self.sessions_discarded()
        self.create_agent(self.a, 'alone')
        for _ in range(64):
            self.assertJson(self.call(self.b, 'GET', '/api/v1/agents'), 200)
        DatabaseIsolationTest.install_probe(self, self.b_schema,
                                            self.a_schema)
        self.create_agent(self.b, 'probe')
        probe = self.stack.psql(
            'SELECT tenant, prepared, cursors FROM :"schema".probe'
            ' ORDER BY at DESC LIMIT 1', superuser=True,
            schema=self.b_schema)
        self.assertEqual(probe, [(self.b.id, '', '')])
        self.assertIn('a request left state on the connection',
                      self.stack.crewd_log())
        self.assertEqual(self.sessions_discarded(), discarded + 1)

    def test_requests_that_leave_nothing_never_discard_the_session(self):
        """The check after a request, the full one included (every 64th,
        lib/db.h), finds nothing after requests that leave nothing:
        reads, and writes whose audit entries go out with the COMMIT.
        A discarded session loses every prepared statement and plan."""
        seen = len(self.stack.crewd_log())
        for i in range(70):
            tenant = (self.a, self.b)[i % 2]
            self.create_agent(tenant, 'clean %d' % i)
        for i in range(70):
            tenant = (self.a, self.b)[i % 2]
            self.assertJson(self.call(tenant, 'GET', '/api/v1/agents'), 200)
        self.assertNotIn('left state on the connection',
                         self.stack.crewd_log()[seen:])

    def test_failed_requests_keep_the_session_and_its_plans(self):
        """A request that fails rolls back (or had ended with its read);
        the check after it finds the session as clean as after a commit,
        and a clean session is kept: a run of 404s, 400s, 422s and
        refused users must not cost the next requests their plans."""
        refused = self.stack.new_tenant('refused')
        self.stack.psql('UPDATE public.users SET token_version ='
                        " token_version + 1 WHERE tenant_id = :'t'",
                        t=refused.id)
        before = self.sessions_discarded()
        for _ in range(3):
            self.assertProblem(self.call(
                self.a, 'GET', '/api/v1/agents/' + random_uuid()), 404)
            self.assertProblem(self.call(
                self.a, 'GET', '/api/v1/agents?limit=nope'), 400)
            self.assertProblem(self.call(
                self.b, 'POST', '/api/v1/agents', json={'name': 7}), 422)
            self.assertProblem(self.call(
                self.b, 'DELETE', '/api/v1/agents/' + random_uuid()), 404)
            for method, path in (('GET', '/api/v1/agents'),
                                 ('GET', '/api/v1/agents/' + random_uuid()),
                                 ('POST', '/api/v1/agents')):
                self.assertProblem(self.call(
                    refused, method, path, json={'name': 'x', 'role': 'r',
                                                 'goal': 'g'}), 401)
        self.assertJson(self.call(self.a, 'GET', '/api/v1/agents'), 200)
        self.assertEqual(self.sessions_discarded(), before)

    def test_temporary_tables_and_session_locks_are_refused(self):
        rows = self.stack.psql(
            "SELECT has_database_privilege(:'who', 'crewd', 'TEMP'),"
            " has_function_privilege(:'who', 'pg_advisory_lock(bigint)',"
            " 'EXECUTE'),"
            " has_function_privilege(:'who',"
            " 'pg_advisory_xact_lock(bigint)', 'EXECUTE')",
            who=self.a_schema if MODE == 'roles' else 'crewd')
        self.assertEqual(rows, [('f', 'f', 't')])


    def test_failed_request_of_one_tenant_leaves_nothing_for_the_next(self):
        b_agent = self.create_agent(self.b, 'bravo only')
        before_a = self.stored_names(self.a_schema)

        failed = self.call(self.a, 'POST', '/api/v1/agents', json={
            'name': 'alpha failed', 'role': 'Worker', 'goal': 'Work',
            'llm_provider_id': random_uuid()})
        self.assertProblem(failed, 422, fields=['/llm_provider_id'])
        self.assertConnectionsIdle()

        body = self.assertJson(
            self.call(self.b, 'GET', '/api/v1/agents?limit=100'), 200)
        self.assertConnectionsIdle()
        stored_b = [r[0] for r in self.stack.psql(
            'SELECT id FROM :"schema".agents ORDER BY created_at DESC, '
            'id DESC', schema=self.b_schema)]
        self.assertEqual([a['id'] for a in body['items']], stored_b)
        self.assertIn(b_agent['id'], stored_b)
        for item in body['items']:
            self.assertNotEqual(item['name'], 'alpha failed')

        self.assertEqual(self.stored_names(self.a_schema), before_a)
        self.assertNotIn('alpha failed', self.stored_names(self.b_schema))

    def test_connection_is_idle_after_each_kind_of_request(self):
        agent = self.create_agent(self.a, 'alpha idle')
        requests = [
            (self.a, 'GET', '/api/v1/agents', None),
            (self.a, 'GET', '/api/v1/agents/' + agent['id'], None),
            (self.a, 'GET', '/api/v1/agents/' + random_uuid(), None),
            (self.a, 'PATCH', '/api/v1/agents/' + agent['id'],
             {'goal': 'Idle'}),
            (self.a, 'POST', '/api/v1/agents', {'name': 5}),
            (self.b, 'GET', '/api/v1/agents?limit=0', None),
            (self.b, 'GET', '/api/v1/users/me', None),
            (self.a, 'DELETE', '/api/v1/agents/' + agent['id'], None),
        ]
        for tenant, method, path, body in requests:
            with self.subTest(tenant=tenant.slug, method=method, path=path):
                self.call(tenant, method, path, json=body)
                self.assertConnectionsIdle()

        resp = self.stack.request('POST', '/api/v1/auth/login',
                                  host=self.b.slug,
                                  json={'email': self.b.email,
                                        'password': 'wrong password'})
        self.assertProblem(resp, 401)
        self.assertConnectionsIdle()

    def test_alternating_tenants_each_see_only_their_own_agents(self):
        a_ids = {self.create_agent(self.a, 'alpha alt %d' % i)['id']
                 for i in range(3)}
        b_ids = {self.create_agent(self.b, 'bravo alt %d' % i)['id']
                 for i in range(3)}
        for _ in range(5):
            a_seen = set(self.list_ids(self.a))
            b_seen = set(self.list_ids(self.b))
            self.assertTrue(a_ids <= a_seen)
            self.assertTrue(b_ids <= b_seen)
            self.assertFalse(a_seen & b_seen)


if __name__ == '__main__':
    crewtest.main()
