"""Tenants cannot see or touch each other, whatever host, token or id
they use; and one worker serving both leaves nothing of one tenant's
request on its connection for the next.

The stack runs ONE worker, so every request below goes through the same
process and the same database connection."""

import crewtest
from crewtest import StackTestCase, random_uuid, wait_for


class IsolationTestCase(StackTestCase):
    stack_options = {'workers': 1}

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
            "AND pid <> pg_backend_pid()"))

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


class ConnectionResetTest(IsolationTestCase):

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
