"""The audit outbox: every create, update and delete of the API writes
one entry into the outbox of the tenant's schema, in the transaction of
the change, with the resource before and after and every secret masked.

The stack runs without the audit shipper (audit_shipper = false), so the
entries stay in the outbox where the tests read them with psql;
test_audit_logs.py follows them to MongoDB.
"""

import json
import os
import re

import crewtest
from crewtest import DEFAULT_PASSWORD, StackTestCase, random_uuid
from test_roles import read_route_table

USER_AGENT = 'audit-test/1.0 (integration)'
MASK = '***'
MUTATING = ('POST', 'PUT', 'PATCH', 'DELETE')

# An ObjectId written as a UUID (lib/mongo.h): oooooooo-oooo-80oo-80oo-
# oooooooo0000.
OID_UUID_RE = re.compile(
    r'^[0-9a-f]{8}-[0-9a-f]{4}-80[0-9a-f]{2}-80[0-9a-f]{2}-[0-9a-f]{8}0000$')


def agent_body(**changes):
    body = {'name': 'auditor', 'role': 'Examiner', 'goal': 'Check the books'}
    body.update(changes)
    return body


class AuditTestCase(StackTestCase):

    stack_options = {'audit_shipper': False}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant = cls.stack.new_tenant('audit')
        cls.schema = cls.stack.tenant_schema(cls.tenant.id)
        cls.admin_id = cls.stack.psql_value(
            "SELECT id FROM public.users WHERE tenant_id = :'t'",
            t=cls.tenant.id)

    def call(self, method, path, token=None, headers=None, **kwargs):
        hdrs = {'User-Agent': USER_AGENT}
        hdrs.update(headers or {})
        return self.stack.request(
            method, path, host=self.tenant.slug, headers=hdrs,
            token=self.tenant.token if token is None else token, **kwargs)

    def create(self, collection, body):
        return self.assertJson(self.call('POST', '/api/v1/' + collection,
                                         json=body), 201)

    def entries(self, resource_id=None, schema=None):
        """The outbox entries (of one resource), oldest first, as dicts
        with changes parsed."""
        where = "WHERE resource_id = :'rid'" if resource_id else ''
        rows = self.stack.psql(
            'SELECT id, user_id, action, resource_type, resource_id,'
            ' changes::text, ip_address, user_agent, created_at'
            ' FROM :"schema".audit_outbox %s ORDER BY id' % where,
            schema=schema or self.schema, rid=resource_id or '')
        keys = ('id', 'user_id', 'action', 'resource_type', 'resource_id',
                'changes', 'ip_address', 'user_agent', 'created_at')
        out = []
        for row in rows:
            entry = dict(zip(keys, row))
            entry['changes'] = json.loads(entry['changes'])
            out.append(entry)
        return out

    def count(self, schema=None):
        return int(self.stack.psql_value(
            'SELECT count(*) FROM :"schema".audit_outbox',
            schema=schema or self.schema))

    def outbox_text(self):
        """Everything the outbox holds, as one text to search."""
        return self.stack.psql_value(
            "SELECT coalesce(string_agg(x::text, E'\\n'), '')"
            ' FROM :"schema".audit_outbox x', schema=self.schema)

    def assertOneEntry(self, resource_id, action, resource_type):
        entries = self.entries(resource_id)
        self.assertEqual(len(entries), 1, entries)
        entry = entries[0]
        self.assertEqual(entry['action'], action)
        self.assertEqual(entry['resource_type'], resource_type)
        self.assertEqual(entry['user_id'], self.admin_id)
        return entry


class OutboxCommitTest(AuditTestCase):

    def test_a_create_commits_its_entry_with_the_change(self):
        agent = self.create('agents', agent_body())
        entry = self.assertOneEntry(agent['id'], 'create', 'agent')
        self.assertRegex(entry['id'], OID_UUID_RE)
        self.assertEqual(entry['changes'], {'before': None, 'after': agent})
        self.assertEqual(entry['ip_address'], '127.0.0.1')
        self.assertEqual(entry['user_agent'], USER_AGENT)

        # Written by the same transaction: the same now().
        self.assertEqual(self.stack.psql(
            'SELECT o.created_at = a.created_at FROM :"schema".audit_outbox'
            ' o, :"schema".agents a WHERE o.resource_id = a.id'
            " AND a.id = :'id'", schema=self.schema, id=agent['id']),
            [('t',)])

    def test_no_shipper_runs_when_the_configuration_says_so(self):
        self.assertEqual(self.stack.shipper_pids(), [])
        self.assertEqual(len(self.stack.crewd_pids()[1]), self.stack.workers)

    def test_a_refused_change_writes_no_entry(self):
        before = self.count()
        resp = self.call('POST', '/api/v1/agents',
                         json=agent_body(llm_provider_id=random_uuid()))
        self.assertProblem(resp, 422, ['/llm_provider_id'])
        resp = self.call('PATCH', '/api/v1/agents/' + random_uuid(),
                         json={'name': 'x'})
        self.assertProblem(resp, 404)
        self.assertEqual(self.count(), before)

    def test_an_entry_rolls_back_with_a_change_whose_commit_fails(self):
        # A check that runs at COMMIT, after the entry was written.
        self.stack.psql(
            'CREATE FUNCTION :"schema".refuse_doomed() RETURNS trigger'
            ' LANGUAGE plpgsql AS $$ BEGIN IF NEW.name = \'doomed\' THEN'
            " RAISE EXCEPTION 'no' USING ERRCODE = '40001'; END IF;"
            ' RETURN NULL; END $$;'
            ' CREATE CONSTRAINT TRIGGER refuse_doomed AFTER INSERT ON'
            ' :"schema".agents DEFERRABLE INITIALLY DEFERRED FOR EACH ROW'
            ' EXECUTE FUNCTION :"schema".refuse_doomed();',
            schema=self.schema)
        try:
            before = self.count()
            resp = self.call('POST', '/api/v1/agents',
                             json=agent_body(name='doomed'))
            self.assertProblem(resp, 503)
            self.assertEqual(self.count(), before)
            self.assertEqual(self.stack.psql_value(
                "SELECT count(*) FROM :\"schema\".agents"
                " WHERE name = 'doomed'", schema=self.schema), '0')
        finally:
            self.stack.psql(
                'DROP TRIGGER refuse_doomed ON :"schema".agents;'
                ' DROP FUNCTION :"schema".refuse_doomed();',
                schema=self.schema)

    def test_a_change_whose_entry_cannot_be_written_does_not_happen(self):
        self.stack.psql(
            'CREATE FUNCTION :"schema".refuse_entry() RETURNS trigger'
            " LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no'"
            " USING ERRCODE = '40001'; END $$;"
            ' CREATE TRIGGER refuse_entry BEFORE INSERT ON'
            ' :"schema".audit_outbox FOR EACH ROW'
            ' EXECUTE FUNCTION :"schema".refuse_entry();',
            schema=self.schema)
        try:
            resp = self.call('POST', '/api/v1/agents',
                             json=agent_body(name='unrecorded'))
        finally:
            self.stack.psql(
                'DROP TRIGGER refuse_entry ON :"schema".audit_outbox;'
                ' DROP FUNCTION :"schema".refuse_entry();',
                schema=self.schema)
        self.assertProblem(resp, 503)
        self.assertEqual(self.stack.psql_value(
            'SELECT count(*) FROM :"schema".agents'
            " WHERE name = 'unrecorded'", schema=self.schema), '0')

        # With the outbox writable again, the same request succeeds.
        agent = self.create('agents', agent_body(name='unrecorded'))
        self.assertOneEntry(agent['id'], 'create', 'agent')

    def test_an_empty_patch_changes_nothing_and_writes_nothing(self):
        agent = self.create('agents', agent_body())
        resp = self.call('PATCH', '/api/v1/agents/' + agent['id'], json={})
        self.assertJson(resp, 200)
        self.assertEqual(len(self.entries(agent['id'])), 1)

    def test_entry_ids_are_in_the_order_of_the_changes(self):
        ids = [self.create('agents', agent_body(name='n%d' % i))['id']
               for i in range(5)]
        entries = [e for e in self.entries() if e['resource_id'] in ids]
        self.assertEqual([e['resource_id'] for e in entries], ids)
        for entry in entries:
            self.assertRegex(entry['id'], OID_UUID_RE)


class ChangesTest(AuditTestCase):

    def test_an_update_records_the_row_before_and_after(self):
        agent = self.create('agents', agent_body(config={'temperature': 1}))
        resp = self.call('PATCH', '/api/v1/agents/' + agent['id'],
                         json={'name': 'renamed', 'config': {'top_p': 0.5}})
        after = self.assertJson(resp, 200)
        entries = self.entries(agent['id'])
        self.assertEqual([e['action'] for e in entries],
                         ['create', 'update'])
        self.assertEqual(entries[1]['changes'],
                         {'before': agent, 'after': after})
        self.assertEqual(after['config'], {'temperature': 1, 'top_p': 0.5})

    def test_a_delete_records_the_row_before(self):
        agent = self.create('agents', agent_body())
        current = self.assertJson(
            self.call('GET', '/api/v1/agents/' + agent['id']), 200)
        self.assertStatus(self.call('DELETE', '/api/v1/agents/' +
                                    agent['id']), 204)
        entry = self.entries(agent['id'])[-1]
        self.assertEqual(entry['action'], 'delete')
        self.assertEqual(entry['changes'], {'before': current,
                                            'after': None})

    def test_secrets_in_a_config_are_masked_and_the_rest_kept(self):
        config = {'api_key': 'sk-live-1', 'max_tokens': 100,
                  'nested': {'Password': 'hunter2', 'tokens': 3},
                  'list': [{'token': 't0ps3cret'}], 'secret': None}
        agent = self.create('agents', agent_body(config=config))
        after = self.assertOneEntry(agent['id'], 'create',
                                    'agent')['changes']['after']
        self.assertEqual(after['config'], {
            'api_key': MASK, 'max_tokens': 100,
            'nested': {'Password': MASK, 'tokens': 3},
            'list': [{'token': MASK}], 'secret': None})
        text = self.outbox_text()
        for value in ('sk-live-1', 'hunter2', 't0ps3cret'):
            self.assertNotIn(value, text)

    def test_a_users_password_is_masked_and_its_hash_never_shown(self):
        password = 'a very secret passphrase'
        user = self.create('users', {'email': 'masked@audit.test',
                                     'password': password,
                                     'role': 'member'})
        entry = self.assertOneEntry(user['id'], 'create', 'user')
        expected = dict(user, password=MASK)
        self.assertEqual(entry['changes'], {'before': None,
                                            'after': expected})

        resp = self.call('PATCH', '/api/v1/users/' + user['id'],
                         json={'password': password + ' 2',
                               'full_name': 'Masked'})
        changed = self.assertJson(resp, 200)
        entry = self.entries(user['id'])[-1]
        self.assertEqual(entry['action'], 'update')
        self.assertEqual(entry['changes'], {
            'before': user, 'after': dict(changed, password=MASK)})

        self.assertStatus(self.call('DELETE', '/api/v1/users/' +
                                    user['id']), 204)
        entry = self.entries(user['id'])[-1]
        self.assertEqual(entry['changes'], {'before': changed,
                                            'after': None})

        text = self.outbox_text()
        self.assertNotIn(password, text)
        hashed = self.stack.psql_value(
            "SELECT password_hash FROM public.users WHERE tenant_id = :'t'"
            " AND role = 'admin'", t=self.tenant.id)
        self.assertNotIn('$argon2', text)
        self.assertNotIn(hashed, text)

    def test_provider_credentials_are_masked_and_their_removal_shown(self):
        provider = self.create('llm-providers', {
            'name': 'sealed', 'provider_type': 'openai',
            'config': {'model': 'gpt'},
            'credentials': {'api_key': 'sk-provider-secret'}})
        entry = self.assertOneEntry(provider['id'], 'create',
                                    'llm_provider')
        self.assertEqual(entry['changes']['after'],
                         dict(provider, credentials=MASK))
        self.assertTrue(provider['has_credentials'])

        resp = self.call('PATCH', '/api/v1/llm-providers/' + provider['id'],
                         json={'credentials': None})
        changed = self.assertJson(resp, 200)
        entry = self.entries(provider['id'])[-1]
        self.assertEqual(entry['changes'], {
            'before': provider, 'after': dict(changed, credentials=None)})
        self.assertFalse(changed['has_credentials'])

        self.assertStatus(self.call('DELETE', '/api/v1/llm-providers/' +
                                    provider['id']), 204)
        self.assertEqual(self.entries(provider['id'])[-1]['changes'],
                         {'before': changed, 'after': None})
        self.assertNotIn('sk-provider-secret', self.outbox_text())
        self.assertNotIn('\\\\x', self.outbox_text())   # no sealed bytes

    def test_a_crews_membership_is_recorded_as_an_update_of_the_crew(self):
        crew = self.create('crews', {'name': 'auditors'})
        first = self.create('agents', agent_body(name='first'))
        second = self.create('agents', agent_body(name='second'))
        resp = self.call('PUT', '/api/v1/crews/%s/agents' % crew['id'],
                         json=[{'agent_id': second['id'], 'position': 0},
                               {'agent_id': first['id'], 'position': 1}])
        self.assertJson(resp, 200)
        resp = self.call('PUT', '/api/v1/crews/%s/agents' % crew['id'],
                         json=[{'agent_id': first['id'], 'position': 0}])
        self.assertJson(resp, 200)

        entries = self.entries(crew['id'])
        self.assertEqual([(e['action'], e['resource_type'])
                          for e in entries],
                         [('create', 'crew'), ('update', 'crew'),
                          ('update', 'crew')])
        self.assertEqual(entries[1]['changes'], {
            'before': {'agents': []},
            'after': {'agents': [
                {'agent_id': second['id'], 'position': 0},
                {'agent_id': first['id'], 'position': 1}]}})
        self.assertEqual(entries[2]['changes'], {
            'before': entries[1]['changes']['after'],
            'after': {'agents': [{'agent_id': first['id'],
                                  'position': 0}]}})

    def test_running_and_cancelling_an_execution_are_recorded(self):
        flow = self.create('flows', {'name': 'audited flow', 'definition': {
            'nodes': [], 'edges': []}})
        resp = self.call('POST', '/api/v1/flows/%s/executions' % flow['id'],
                         json={'inputs': {'q': 1}})
        execution = self.assertJson(resp, 202)
        resp = self.call('POST', '/api/v1/executions/%s/cancel' %
                         execution['id'])
        cancelled = self.assertJson(resp, 200)

        entries = self.entries(execution['id'])
        self.assertEqual([(e['action'], e['resource_type'])
                          for e in entries],
                         [('create', 'execution'), ('update', 'execution')])
        self.assertEqual(entries[0]['changes'], {'before': None,
                                                 'after': execution})
        self.assertEqual(entries[1]['changes'], {'before': execution,
                                                 'after': cancelled})
        self.assertEqual(cancelled['status'], 'cancelled')

    def test_a_forced_agent_delete_is_one_entry_of_the_agent(self):
        crew = self.create('crews', {'name': 'left behind'})
        agent = self.create('agents', agent_body(name='leaver'))
        self.assertJson(self.call(
            'PUT', '/api/v1/crews/%s/agents' % crew['id'],
            json=[{'agent_id': agent['id'], 'position': 0}]), 200)
        before = self.count()
        self.assertStatus(self.call(
            'DELETE', '/api/v1/agents/%s?force=true' % agent['id']), 204)
        self.assertEqual(self.count(), before + 1)
        self.assertEqual(self.entries(agent['id'])[-1]['action'], 'delete')


class SignupTest(AuditTestCase):

    def test_sign_up_records_the_tenant_and_its_first_admin(self):
        slug = 'signed-%s' % os.urandom(4).hex()
        resp = self.stack.request('POST', '/api/v1/tenants', json={
            'name': 'Signed', 'slug': slug, 'admin_email': 'a@signed.test',
            'admin_password': DEFAULT_PASSWORD},
            headers={'User-Agent': USER_AGENT})
        tenant = self.assertJson(resp, 201)
        schema = self.stack.tenant_schema(tenant['id'])
        admin_id = self.stack.psql_value(
            "SELECT id FROM public.users WHERE tenant_id = :'t'",
            t=tenant['id'])

        entries = self.entries(schema=schema)
        self.assertEqual([(e['action'], e['resource_type'],
                           e['resource_id'], e['user_id'])
                          for e in entries],
                         [('create', 'tenant', tenant['id'], admin_id),
                          ('create', 'user', admin_id, admin_id)])
        self.assertEqual(entries[0]['changes'], {'before': None,
                                                 'after': tenant})
        token = self.stack.login(slug, 'a@signed.test')
        admin = self.assertJson(self.stack.request(
            'GET', '/api/v1/users/me', host=slug, token=token), 200)
        self.assertEqual(entries[1]['changes'], {
            'before': None, 'after': dict(admin, password=MASK)})
        for entry in entries:
            self.assertEqual(entry['user_agent'], USER_AGENT)
            self.assertEqual(entry['ip_address'], '127.0.0.1')

    def test_crewctl_tenant_create_records_the_same_entries(self):
        slug = 'cli-%s' % os.urandom(4).hex()
        out = self.stack.crewctl('tenant', 'create', '--name', 'Cli',
                                 '--slug', slug, '--admin-email',
                                 'a@cli.test').stdout
        tenant_id = re.search(r'tenant id: (\S+)', out).group(1)
        entries = self.entries(schema=self.stack.tenant_schema(tenant_id))
        self.assertEqual([(e['resource_type'], e['user_agent'],
                           e['ip_address']) for e in entries],
                         [('tenant', 'crewctl', None),
                          ('user', 'crewctl', None)])


class RequestFieldsTest(AuditTestCase):

    def test_a_user_agent_is_capped_and_cleaned(self):
        long_agent = 'x' * 600
        agent = self.assertJson(self.call(
            'POST', '/api/v1/agents', json=agent_body(),
            headers={'User-Agent': long_agent}), 201)
        self.assertEqual(self.entries(agent['id'])[0]['user_agent'],
                         'x' * 512)

        # http.client sends str headers as Latin-1: "\xe9" is one byte
        # that is not UTF-8.
        agent = self.assertJson(self.call(
            'POST', '/api/v1/agents', json=agent_body(),
            headers={'User-Agent': 'caf\xe9 client'}), 201)
        self.assertEqual(self.entries(agent['id'])[0]['user_agent'],
                         'caf? client')

    def test_no_user_agent_is_stored_as_null(self):
        agent = self.assertJson(self.stack.request(
            'POST', '/api/v1/agents', host=self.tenant.slug,
            token=self.tenant.token, json=agent_body()), 201)
        self.assertIsNone(self.entries(agent['id'])[0]['user_agent'])


class TenantSettingsTest(AuditTestCase):

    def setUp(self):
        super().setUp()
        # A tenant of its own: reads it audits would add to others' counts.
        self.reader = self.stack.new_tenant('reads')
        self.reader_schema = self.stack.tenant_schema(self.reader.id)

    def read_call(self, method, path, headers=None, **kwargs):
        hdrs = {'User-Agent': USER_AGENT}
        hdrs.update(headers or {})
        return self.stack.request(method, path, host=self.reader.slug,
                                  token=self.reader.token, headers=hdrs,
                                  **kwargs)

    def reads(self):
        return [(e['resource_type'], e['resource_id'])
                for e in self.entries(schema=self.reader_schema)
                if e['action'] == 'read']

    def test_the_tenant_record_shows_audit_reads_off_at_first(self):
        record = self.assertJson(self.read_call('GET', '/api/v1/tenant'), 200)
        self.assertFalse(record['audit_reads'])
        self.assertEqual(self.reads(), [])

    def test_changing_a_setting_is_recorded_and_announced(self):
        before = self.assertJson(self.read_call('GET', '/api/v1/tenant'), 200)
        resp = self.read_call('PATCH', '/api/v1/tenant',
                              json={'audit_reads': True, 'name': 'Readers'})
        after = self.assertJson(resp, 200)
        self.assertTrue(after['audit_reads'])
        self.assertEqual(after['name'], 'Readers')
        self.assertNotEqual(resp.headers['ETag'], '')
        entry = self.entries(schema=self.reader_schema)[-1]
        self.assertEqual((entry['action'], entry['resource_type'],
                          entry['resource_id']),
                         ('update', 'tenant', self.reader.id))
        self.assertEqual(entry['changes'], {'before': before,
                                            'after': after})

    def test_a_stale_if_match_or_a_bad_field_changes_nothing(self):
        resp = self.read_call('PATCH', '/api/v1/tenant',
                              json={'audit_reads': True},
                              headers={'If-Match': '"1"'})
        self.assertProblem(resp, 412)
        for body, field in (({'audit_reads': 'yes'}, '/audit_reads'),
                            ({'slug': 'other'}, '/slug'),
                            ({'name': ''}, '/name')):
            with self.subTest(body=body):
                self.assertProblem(self.read_call(
                    'PATCH', '/api/v1/tenant', json=body), 422, [field])
        self.assertEqual(len(self.entries(schema=self.reader_schema)), 2)

    def test_reads_are_audited_while_the_tenant_asks_for_it(self):
        agent = self.assertJson(self.read_call(
            'POST', '/api/v1/agents', json=agent_body()), 201)
        crew = self.assertJson(self.read_call(
            'POST', '/api/v1/crews', json={'name': 'read'}), 201)
        self.read_call('GET', '/api/v1/agents')
        self.assertEqual(self.reads(), [])

        self.assertJson(self.read_call('PATCH', '/api/v1/tenant',
                                       json={'audit_reads': True}), 200)
        user_id = self.stack.psql_value(
            "SELECT id FROM public.users WHERE tenant_id = :'t'",
            t=self.reader.id)
        for path in ('/api/v1/agents', '/api/v1/agents/' + agent['id'],
                     '/api/v1/users/me', '/api/v1/tenant',
                     '/api/v1/crews/%s/agents' % crew['id'],
                     '/api/v1/audit-logs'):
            self.assertStatus(self.read_call('GET', path), 200)
        self.assertStatus(self.read_call('HEAD', '/api/v1/agents/' +
                                         agent['id']), 200)
        # A read that fails is no read.
        self.assertStatus(self.read_call('GET', '/api/v1/agents/' +
                                         random_uuid()), 404)
        self.assertEqual(self.reads(), [
            ('agent', None), ('agent', agent['id']), ('user', user_id),
            ('tenant', self.reader.id), ('crew', crew['id']),
            ('audit_log', None), ('agent', agent['id'])])

        self.assertJson(self.read_call('PATCH', '/api/v1/tenant',
                                       json={'audit_reads': False}), 200)
        self.read_call('GET', '/api/v1/agents')
        self.assertEqual(len(self.reads()), 7)

    def test_reads_are_audited_before_the_workers_hear_of_the_setting(self):
        """A worker ends a read with its statement while its cached tenant
        does not audit reads; the tenant's row, read in that transaction,
        is what decides, so a setting changed behind the workers' backs
        (no announcement; their caches keep it for seconds) is still
        honoured at once, each read with its entry."""
        agent = self.assertJson(self.read_call(
            'POST', '/api/v1/agents', json=agent_body()), 201)
        for _ in range(10):     # every worker caches the tenant, unaudited
            self.assertStatus(self.read_call('GET', '/api/v1/agents'), 200)
        self.assertEqual(self.reads(), [])

        self.stack.psql("UPDATE public.tenants SET audit_reads = true"
                        " WHERE id = :'t'", t=self.reader.id)
        for _ in range(5):
            self.assertStatus(self.read_call('GET', '/api/v1/agents'), 200)
            self.assertStatus(self.read_call(
                'GET', '/api/v1/agents/' + agent['id']), 200)
        self.assertStatus(self.read_call('GET', '/api/v1/agents/' +
                                         random_uuid()), 404)
        self.assertEqual(self.reads(),
                         [('agent', None), ('agent', agent['id'])] * 5)

    def test_a_read_entry_names_the_reader_and_no_changes(self):
        self.assertJson(self.read_call('PATCH', '/api/v1/tenant',
                                       json={'audit_reads': True}), 200)
        self.assertJson(self.read_call('GET', '/api/v1/tools'), 200)
        entry = [e for e in self.entries(schema=self.reader_schema)
                 if e['action'] == 'read'][-1]
        self.assertEqual(entry['resource_type'], 'tool')
        self.assertEqual(entry['changes'], {'before': None, 'after': None})
        self.assertEqual(entry['user_agent'], USER_AGENT)
        self.assertEqual(entry['ip_address'], '127.0.0.1')


def audited_type(pattern):
    """The resource type an entry of a route names."""
    if pattern.endswith('/executions'):
        return 'execution'      # running a flow makes an execution
    if pattern.endswith('/logs'):
        return 'execution_log'
    return {'agents': 'agent', 'crews': 'crew', 'flows': 'flow',
            'executions': 'execution', 'tools': 'tool',
            'llm-providers': 'llm_provider', 'users': 'user',
            'conversations': 'chat_message',
            'tenant': 'tenant'}[pattern.split('/')[3]]


class RouteWalkTest(AuditTestCase):
    """Every mutating route of the route table writes exactly one entry.
    A route without a way to call it here fails the first test, so a new
    route cannot go unaudited unnoticed."""

    # Each returns (path, body) for a request that succeeds.
    def fixture_post_users(self):
        return '/api/v1/users', {
            'email': 'walk-%s@audit.test' % os.urandom(4).hex(),
            'password': DEFAULT_PASSWORD, 'role': 'viewer'}

    def a_user(self):
        path, body = self.fixture_post_users()
        return self.create('users', body)['id']

    def fixture_patch_users_id(self):
        return '/api/v1/users/' + self.a_user(), {'full_name': 'Walker'}

    def fixture_delete_users_id(self):
        return '/api/v1/users/' + self.a_user(), None

    def a(self, collection, body):
        return self.create(collection, body)['id']

    def fixture_post_agents(self):
        return '/api/v1/agents', agent_body()

    def fixture_patch_agents_id(self):
        return '/api/v1/agents/' + self.a('agents', agent_body()), {
            'goal': 'Walk'}

    def fixture_delete_agents_id(self):
        return '/api/v1/agents/' + self.a('agents', agent_body()), None

    def provider(self):
        return {'name': 'walk', 'provider_type': 'anthropic',
                'credentials': {'api_key': 'k'}}

    def fixture_post_llm_providers(self):
        return '/api/v1/llm-providers', self.provider()

    def fixture_patch_llm_providers_id(self):
        return '/api/v1/llm-providers/' + self.a(
            'llm-providers', self.provider()), {'priority': 7}

    def fixture_delete_llm_providers_id(self):
        return '/api/v1/llm-providers/' + self.a(
            'llm-providers', self.provider()), None

    def fixture_post_crews(self):
        return '/api/v1/crews', {'name': 'walk'}

    def fixture_patch_crews_id(self):
        return '/api/v1/crews/' + self.a('crews', {'name': 'walk'}), {
            'process': 'hierarchical'}

    def fixture_delete_crews_id(self):
        return '/api/v1/crews/' + self.a('crews', {'name': 'walk'}), None

    def fixture_put_crews_id_agents(self):
        crew = self.a('crews', {'name': 'walk'})
        agent = self.a('agents', agent_body())
        return '/api/v1/crews/%s/agents' % crew, [
            {'agent_id': agent, 'position': 0}]

    def flow(self):
        return {'name': 'walk', 'definition': {'nodes': [], 'edges': []}}

    def fixture_post_flows(self):
        return '/api/v1/flows', self.flow()

    def fixture_patch_flows_id(self):
        return '/api/v1/flows/' + self.a('flows', self.flow()), {
            'is_active': False}

    def fixture_delete_flows_id(self):
        return '/api/v1/flows/' + self.a('flows', self.flow()), None

    def fixture_post_flows_id_executions(self):
        return '/api/v1/flows/%s/executions' % self.a(
            'flows', self.flow()), None

    def fixture_post_executions_id_cancel(self):
        return '/api/v1/executions/%s/cancel' % self.an_execution(), None

    def an_execution(self):
        flow = self.a('flows', self.flow())
        resp = self.call('POST', '/api/v1/flows/%s/executions' % flow)
        return self.assertJson(resp, 202)['id']

    def fixture_post_executions_id_logs(self):
        return '/api/v1/executions/%s/logs' % self.an_execution(), [
            {'level': 'info', 'message': 'one'},
            {'level': 'error', 'message': 'two'}]

    def fixture_post_conversations_id_messages(self):
        return '/api/v1/conversations/%s/messages' % random_uuid(), {
            'role': 'user', 'content': 'hello'}

    def fixture_patch_tenant(self):
        return '/api/v1/tenant', {'name': 'Walked %s' % os.urandom(2).hex()}

    def tool(self):
        return {'name': 'walk', 'docker_image': 'alpine:3',
                'schema': {'type': 'object'}}

    def fixture_post_tools(self):
        return '/api/v1/tools', self.tool()

    def fixture_patch_tools_id(self):
        return '/api/v1/tools/' + self.a('tools', self.tool()), {
            'description': 'walked'}

    def fixture_delete_tools_id(self):
        return '/api/v1/tools/' + self.a('tools', self.tool()), None

    @staticmethod
    def fixture_name(route):
        words = [w.strip('{}').replace('-', '_')
                 for w in route.pattern.split('/')[3:]]
        return 'fixture_%s_%s' % (route.method.lower(), '_'.join(words))

    def mutating_routes(self):
        routes, _ = read_route_table()
        return [r for r in routes if r.host == 'HOST_TENANT' and
                r.method in MUTATING and r.role != 'ROLE_NONE']

    def test_every_mutating_route_has_a_fixture_here(self):
        missing = [r for r in self.mutating_routes()
                   if not hasattr(self, self.fixture_name(r))]
        self.assertEqual(missing, [])
        self.assertGreaterEqual(len(self.mutating_routes()), 20)

    def test_every_mutating_route_writes_exactly_one_entry(self):
        for route in self.mutating_routes():
            with self.subTest(route=route):
                fixture = getattr(self, self.fixture_name(route))
                path, body = fixture()
                before = {e['id'] for e in self.entries()}
                resp = self.call(route.method, path, json=body)
                self.assertIn(resp.status, (200, 201, 202, 204), resp)
                new = [e for e in self.entries() if e['id'] not in before]
                self.assertEqual(len(new), 1, new)
                action = ('delete' if route.method == 'DELETE' else
                          'create' if route.method == 'POST' and
                          not route.pattern.endswith('/cancel') else
                          'update')
                self.assertEqual(new[0]['action'], action)
                self.assertEqual(new[0]['resource_type'],
                                 audited_type(route.pattern))
                self.assertEqual(new[0]['user_id'], self.admin_id)
                if route.pattern.endswith('/logs'):
                    # A batch of entries of the execution in the path.
                    self.assertEqual(new[0]['resource_id'],
                                     path.split('/')[4])
                    self.assertEqual(new[0]['changes'], {
                        'before': None, 'after': {
                            'execution_id': path.split('/')[4],
                            'count': len(body)}})
                elif resp.status != 204 and 'id' in resp.json():
                    self.assertEqual(new[0]['resource_id'],
                                     resp.json()['id'])


if __name__ == '__main__':
    crewtest.main()
