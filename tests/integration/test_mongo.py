"""Each tenant's MongoDB collections, execution logs and chat messages,
through nginx, against the local MongoDB-protocol server.

What crewd wrote is read back with a client of its own (mongowire.py:
listCollections, listIndexes, find), not through crewd.  The local
server keeps validators and indexes but enforces neither; what only a
real MongoDB does is in test_mongo_real.py.
"""

import datetime
import os
import unittest
import urllib.parse

import crewtest
import mongowire
from crewtest import StackTestCase, random_uuid, wait_for
from stack import DEFAULT_PASSWORD

DATABASE = 'crewd'
DAY = 86400

# A real MongoDB (4.4 or later, no authentication) for what the local
# server does not do; its tests are skipped without one.
REAL_URI = os.environ.get('CREWD_TEST_MONGODB_URI', '')
REAL_DATABASE = 'crewd_test_%s' % os.urandom(4).hex()
NO_REAL_MONGODB = ('needs a real MongoDB: set CREWD_TEST_MONGODB_URI, e.g. '
                   'mongodb://127.0.0.1:27017/ (the local server enforces '
                   'no validator, TTL or uniqueness)')


def real_stack_uri():
    """CREWD_TEST_MONGODB_URI with a database of this run's own."""
    parts = urllib.parse.urlsplit(REAL_URI)
    return urllib.parse.urlunsplit(parts._replace(path='/' + REAL_DATABASE))

# The validators of the design (docs/mongodb.md), exactly.
EXECUTION_LOG_VALIDATOR = {'$jsonSchema': {
    'bsonType': 'object',
    'required': ['execution_id', 'level', 'message', 'timestamp'],
    'properties': {
        'execution_id': {'bsonType': 'string',
                         'description': 'UUID of the execution'},
        'node_id': {'bsonType': 'string',
                    'description': 'Flow node that generated the log'},
        'level': {'enum': ['debug', 'info', 'warning', 'error'],
                  'description': 'Log level'},
        'message': {'bsonType': 'string', 'description': 'Log message'},
        'metadata': {'bsonType': 'object',
                     'description': 'Additional structured data'},
        'timestamp': {'bsonType': 'date', 'description': 'Log timestamp'},
    }}}

CHAT_MESSAGE_VALIDATOR = {'$jsonSchema': {
    'bsonType': 'object',
    'required': ['conversation_id', 'role', 'content', 'timestamp'],
    'properties': {
        'conversation_id': {'bsonType': 'string',
                            'description': 'Conversation identifier'},
        'role': {'enum': ['user', 'assistant', 'system', 'tool'],
                 'description': 'Message sender role'},
        'content': {'bsonType': 'string', 'description': 'Message content'},
        'tool_calls': {'bsonType': 'array',
                       'description': 'Tool invocations in this message'},
        'metadata': {'bsonType': 'object',
                     'description': 'Additional metadata (tokens, cost, '
                                    'etc.)'},
        'timestamp': {'bsonType': 'date'},
    }}}

AUDIT_LOG_VALIDATOR = {'$jsonSchema': {
    'bsonType': 'object',
    'required': ['user_id', 'action', 'resource_type', 'timestamp'],
    'properties': {
        'user_id': {'bsonType': 'string',
                    'description': 'User who performed the action'},
        'action': {'enum': ['create', 'read', 'update', 'delete'],
                   'description': 'Action performed'},
        'resource_type': {'bsonType': 'string',
                          'description': 'Type of resource (agent, flow, '
                                         'etc.)'},
        'resource_id': {'bsonType': 'string',
                        'description': 'ID of the affected resource'},
        'changes': {'bsonType': 'object',
                    'description': 'Before/after values'},
        'ip_address': {'bsonType': 'string'},
        'user_agent': {'bsonType': 'string'},
        'timestamp': {'bsonType': 'date'},
    }}}

LOG_KEYS = {'id', 'execution_id', 'node_id', 'level', 'message', 'metadata',
            'timestamp'}
MESSAGE_KEYS = {'id', 'conversation_id', 'role', 'content', 'tool_calls',
                'metadata', 'timestamp'}


def indexes_of(client, collection):
    """{name: (key pairs, expireAfterSeconds or None)}."""
    return {i['name']: (list(i['key'].items()),
                        i.get('expireAfterSeconds'))
            for i in client.list_indexes(DATABASE, collection)}


class MongoTestCase(StackTestCase):

    database = DATABASE

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant = cls.stack.new_tenant('mongo')

    def wire(self):
        return mongowire.Client('127.0.0.1', self.stack.mongo_port)

    def call(self, method, path, token=None, tenant=None, **kwargs):
        tenant = tenant or self.tenant
        return self.stack.request(
            method, path, host=tenant.slug,
            token=tenant.token if token is None else token, **kwargs)

    def new_execution(self, tenant=None):
        tenant = tenant or self.tenant
        flow = self.assertJson(self.call('POST', '/api/v1/flows',
                                         tenant=tenant, json={
                                             'name': 'flow %s' % random_uuid(),
                                             'definition': {'nodes': [],
                                                            'edges': []}}),
                               201)
        run = self.call('POST', '/api/v1/flows/%s/executions' % flow['id'],
                        tenant=tenant)
        return self.assertJson(run, 202)['id']

    def invite(self, role, tenant=None):
        """A user of this role in the tenant, and their token."""
        tenant = tenant or self.tenant
        email = '%s-%s@mongo.test' % (role, os.urandom(4).hex())
        self.assertJson(self.call('POST', '/api/v1/users', tenant=tenant,
                                  json={'email': email,
                                        'password': DEFAULT_PASSWORD,
                                        'role': role}), 201)
        return self.stack.login(tenant.slug, email)

    def collection(self, kind, tenant=None):
        return '%s_%s' % (kind, (tenant or self.tenant).id)

    def stored(self, kind, filter, tenant=None):
        with self.wire() as client:
            return client.find(self.database, self.collection(kind, tenant),
                               filter, sort={'timestamp': 1, '_id': 1})


# ---------------------------------------------------------------------
# Provisioning.
# ---------------------------------------------------------------------

class ProvisioningTest(MongoTestCase):

    def options(self, kind):
        with self.wire() as client:
            found = client.list_collections(DATABASE,
                                            self.collection(kind))
        self.assertEqual(len(found), 1, found)
        return found[0]['options']

    def test_sign_up_creates_the_three_collections(self):
        with self.wire() as client:
            names = {c['name'] for c in client.list_collections(DATABASE)}
        for kind in ('execution_logs', 'chat_messages', 'audit_logs'):
            self.assertIn(self.collection(kind), names)

    def test_sign_up_marks_the_tenant_provisioned(self):
        made = self.stack.psql_value(
            "SELECT mongo_provisioned_at IS NOT NULL FROM public.tenants"
            " WHERE id = :'id'", id=self.tenant.id)
        self.assertEqual(made, 't')

    def test_execution_logs_carry_the_design_validator(self):
        options = self.options('execution_logs')
        self.assertEqual(options['validator'], EXECUTION_LOG_VALIDATOR)
        self.assertEqual(options['validationLevel'], 'strict')
        self.assertEqual(options['validationAction'], 'error')

    def test_chat_messages_carry_the_design_validator(self):
        options = self.options('chat_messages')
        self.assertEqual(options['validator'], CHAT_MESSAGE_VALIDATOR)
        self.assertEqual(options['validationLevel'], 'strict')

    def test_audit_logs_carry_the_design_validator(self):
        options = self.options('audit_logs')
        self.assertEqual(options['validator'], AUDIT_LOG_VALIDATOR)
        self.assertEqual(options['validationLevel'], 'strict')

    def test_execution_logs_index_execution_and_time_with_a_30_day_ttl(self):
        with self.wire() as client:
            indexes = indexes_of(client, self.collection('execution_logs'))
        self.assertEqual(indexes['execution_id_1_timestamp_-1'],
                         ([('execution_id', 1), ('timestamp', -1)], None))
        self.assertEqual(indexes['timestamp_1'],
                         ([('timestamp', 1)], 30 * DAY))
        self.assertEqual(set(indexes), {'_id_', 'execution_id_1_timestamp_-1',
                                        'timestamp_1'})

    def test_chat_messages_index_conversation_and_time_with_a_ttl(self):
        with self.wire() as client:
            indexes = indexes_of(client, self.collection('chat_messages'))
        self.assertEqual(indexes['conversation_id_1_timestamp_1'],
                         ([('conversation_id', 1), ('timestamp', 1)], None))
        self.assertEqual(indexes['timestamp_1'],
                         ([('timestamp', 1)], 30 * DAY))
        self.assertEqual(len(indexes), 3)

    def test_audit_logs_index_user_and_resource_without_ttl(self):
        with self.wire() as client:
            indexes = indexes_of(client, self.collection('audit_logs'))
        self.assertEqual(indexes, {
            '_id_': ([('_id', 1)], None),
            'user_id_1_timestamp_-1': ([('user_id', 1), ('timestamp', -1)],
                                       None),
            'resource_type_1_resource_id_1': ([('resource_type', 1),
                                               ('resource_id', 1)], None),
        })

    def test_ttls_are_set_per_tenant(self):
        tenant = self.stack.new_tenant('ttl')
        out = self.stack.crewctl('mongo', 'ttl', '--tenant', tenant.slug,
                                 '--execution-logs', '7',
                                 '--chat-messages', '90')
        self.assertIn('applied', out.stdout)
        with self.wire() as client:
            logs = indexes_of(client, self.collection('execution_logs',
                                                      tenant))
            chat = indexes_of(client, self.collection('chat_messages',
                                                      tenant))
        self.assertEqual(logs['timestamp_1'][1], 7 * DAY)
        self.assertEqual(chat['timestamp_1'][1], 90 * DAY)
        self.assertEqual(self.stack.psql(
            "SELECT execution_log_ttl_days, chat_message_ttl_days,"
            " mongo_provisioned_at IS NOT NULL FROM public.tenants"
            " WHERE id = :'id'", id=tenant.id), [('7', '90', 't')])
        # Another tenant keeps its own.
        with self.wire() as client:
            mine = indexes_of(client, self.collection('execution_logs'))
        self.assertEqual(mine['timestamp_1'][1], 30 * DAY)

    def test_a_ttl_out_of_range_is_refused(self):
        for days in ('0', '3651', 'x'):
            with self.subTest(days=days):
                out = self.stack.crewctl('mongo', 'ttl', '--tenant',
                                         self.tenant.slug,
                                         '--execution-logs', days,
                                         check=False)
                self.assertNotEqual(out.returncode, 0)
        self.assertEqual(self.stack.psql_value(
            "SELECT execution_log_ttl_days FROM public.tenants"
            " WHERE id = :'id'", id=self.tenant.id), '30')

    def test_provisioning_again_changes_nothing(self):
        with self.wire() as client:
            before = indexes_of(client, self.collection('execution_logs'))
        out = self.stack.crewctl('mongo', 'provision', '--tenant',
                                 self.tenant.slug)
        self.assertIn('collections made', out.stdout)
        with self.wire() as client:
            after = indexes_of(client, self.collection('execution_logs'))
        self.assertEqual(before, after)
        self.assertEqual(self.options('execution_logs')['validator'],
                         EXECUTION_LOG_VALIDATOR)

    def test_crewctl_tenant_create_makes_the_collections(self):
        slug = 'cli-%s' % os.urandom(4).hex()
        out = self.stack.crewctl('tenant', 'create', '--name', 'Cli',
                                 '--slug', slug,
                                 '--admin-email', 'a@%s.test' % slug)
        self.assertIn('mongodb collections: made', out.stdout)
        tenant_id = self.stack.psql_value(
            "SELECT id FROM public.tenants WHERE slug = :'s'", s=slug)
        with self.wire() as client:
            names = {c['name'] for c in client.list_collections(DATABASE)}
        self.assertIn('audit_logs_%s' % tenant_id, names)

    def test_crewctl_inspect_prints_what_mongodb_holds(self):
        shown = self.stack.mongo_inspect(self.tenant.slug)
        self.assertEqual(shown['tenant_id'], self.tenant.id)
        self.assertFalse(shown['pending'])
        logs = shown['collections']['execution_logs']
        self.assertTrue(logs['exists'])
        self.assertEqual(logs['name'], self.collection('execution_logs'))
        self.assertEqual(logs['options']['validator'],
                         EXECUTION_LOG_VALIDATOR)
        self.assertIn('timestamp_1', [i['name'] for i in logs['indexes']])

    def test_readyz_reports_mongodb_up(self):
        body = self.assertJson(self.stack.request('GET', '/readyz'), 200)
        self.assertEqual(body, {'status': 'ready', 'postgresql': 'up',
                                'mongodb': 'up'})


# ---------------------------------------------------------------------
# Execution logs.
# ---------------------------------------------------------------------

class ExecutionLogTest(MongoTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.member = None

    def logs_path(self, execution_id):
        return '/api/v1/executions/%s/logs' % execution_id

    def post_logs(self, execution_id, body, **kwargs):
        return self.call('POST', self.logs_path(execution_id), json=body,
                         **kwargs)

    def test_one_entry_answers_201_with_the_entry(self):
        execution_id = self.new_execution()
        resp = self.post_logs(execution_id, {
            'level': 'info', 'message': 'started', 'node_id': 'n1',
            'metadata': {'tokens': 12, 'model': {'name': 'x', 'temp': 0.5}}})
        entry = self.assertJson(resp, 201)
        self.assertEqual(set(entry), LOG_KEYS)
        self.assertUuid(entry['id'])
        self.assertTimestamp(entry['timestamp'])
        self.assertEqual(entry['execution_id'], execution_id)
        self.assertEqual(entry['level'], 'info')
        self.assertEqual(entry['message'], 'started')
        self.assertEqual(entry['node_id'], 'n1')
        self.assertEqual(entry['metadata'],
                         {'tokens': 12, 'model': {'name': 'x', 'temp': 0.5}})
        self.assertEqual(resp.headers['Location'],
                         self.logs_path(execution_id))

    def test_an_entry_is_stored_with_the_types_of_the_validator(self):
        execution_id = self.new_execution()
        self.assertJson(self.post_logs(execution_id, {
            'level': 'warning', 'message': 'slow', 'metadata': {'ms': 900}}),
            201)
        [doc] = self.stored('execution_logs',
                            {'execution_id': execution_id})
        self.assertIsInstance(doc['_id'], mongowire.ObjectId)
        self.assertIsInstance(doc['timestamp'], datetime.datetime)
        self.assertEqual({k: v for k, v in doc.items()
                          if k not in ('_id', 'timestamp')},
                         {'execution_id': execution_id, 'level': 'warning',
                          'message': 'slow', 'metadata': {'ms': 900}})
        age = (datetime.datetime.now(datetime.timezone.utc) -
               doc['timestamp']).total_seconds()
        self.assertLess(abs(age), 60)

    def test_an_array_is_written_in_order_in_one_request(self):
        execution_id = self.new_execution()
        resp = self.post_logs(execution_id, [
            {'level': 'debug', 'message': 'm%d' % i} for i in range(1000)])
        body = self.assertJson(resp, 201)
        self.assertEqual(set(body), {'items'})
        self.assertEqual([e['message'] for e in body['items']],
                         ['m%d' % i for i in range(1000)])
        stored = self.stored('execution_logs',
                             {'execution_id': execution_id})
        self.assertEqual([d['message'] for d in stored],
                         ['m%d' % i for i in range(1000)])

    def test_more_than_1000_entries_answer_422_and_write_nothing(self):
        execution_id = self.new_execution()
        resp = self.post_logs(execution_id, [
            {'level': 'debug', 'message': 'x'}] * 1001)
        self.assertProblem(resp, 422, fields=[''])
        self.assertEqual(self.stored('execution_logs',
                                     {'execution_id': execution_id}), [])

    def test_an_empty_array_answers_422(self):
        resp = self.post_logs(self.new_execution(), [])
        self.assertProblem(resp, 422, fields=[''])

    def test_a_body_that_is_not_entries_answers_422(self):
        execution_id = self.new_execution()
        for body in ('"text"', '3', 'null', 'true'):
            with self.subTest(body=body):
                resp = self.call('POST', self.logs_path(execution_id),
                                 body=body,
                                 headers={'Content-Type': 'application/json'})
                self.assertProblem(resp, 422, fields=[''])
        resp = self.post_logs(execution_id, [{'level': 'info',
                                              'message': 'a'}, 'b', [1]])
        self.assertProblem(resp, 422, fields=['/1', '/2'])

    def test_each_bad_entry_shape_answers_422_naming_the_field(self):
        good = {'level': 'info', 'message': 'hello'}
        cases = [
            ({'message': 'no level'}, '/level'),
            ({'level': 'info'}, '/message'),
            (dict(good, level='loud'), '/level'),
            (dict(good, level='INFO'), '/level'),
            (dict(good, level=1), '/level'),
            (dict(good, message=42), '/message'),
            (dict(good, message=['a']), '/message'),
            (dict(good, node_id=7), '/node_id'),
            (dict(good, node_id=''), '/node_id'),
            (dict(good, node_id='x' * 256), '/node_id'),
            (dict(good, metadata='text'), '/metadata'),
            (dict(good, metadata=[1, 2]), '/metadata'),
            (dict(good, timestamp='2026-01-01T00:00:00Z'), '/timestamp'),
            (dict(good, execution_id=random_uuid()), '/execution_id'),
            (dict(good, id=random_uuid()), '/id'),
            (dict(good, colour='red'), '/colour'),
        ]
        execution_id = self.new_execution()
        for body, field in cases:
            with self.subTest(body=body):
                self.assertProblem(self.post_logs(execution_id, body), 422,
                                   fields=[field])
        self.assertEqual(self.stored('execution_logs',
                                     {'execution_id': execution_id}), [])

    def test_problems_in_a_batch_name_each_entry(self):
        execution_id = self.new_execution()
        resp = self.post_logs(execution_id, [
            {'level': 'info', 'message': 'fine'},
            {'level': 'nope', 'message': 'a'},
            {'level': 'info', 'message': 'b', 'metadata': {'$set': 1}},
        ])
        self.assertProblem(resp, 422, fields=['/1/level', '/2/metadata/$set'])
        self.assertEqual(self.stored('execution_logs',
                                     {'execution_id': execution_id}), [])

    def test_dollar_keys_are_refused_at_any_depth(self):
        execution_id = self.new_execution()
        cases = [
            ({'$where': 'sleep(1000)'}, '/metadata/$where'),
            ({'a': {'$gt': ''}}, '/metadata/a/$gt'),
            ({'a': [{'ok': 1}, {'$ne': None}]}, '/metadata/a/1/$ne'),
        ]
        for metadata, field in cases:
            with self.subTest(metadata=metadata):
                resp = self.post_logs(execution_id, {
                    'level': 'info', 'message': 'm', 'metadata': metadata})
                self.assertProblem(resp, 422, fields=[field])
        self.assertEqual(self.stored('execution_logs',
                                     {'execution_id': execution_id}), [])

    def test_empty_member_names_are_refused_not_a_500(self):
        execution_id = self.new_execution()
        resp = self.post_logs(execution_id, {
            'level': 'info', 'message': 'm', 'metadata': {'': 1}})
        self.assertProblem(resp, 422, fields=['/metadata/'])
        self.assertEqual(self.stored('execution_logs',
                                     {'execution_id': execution_id}), [])

    def test_dotted_keys_are_refused(self):
        execution_id = self.new_execution()
        resp = self.post_logs(execution_id, {
            'level': 'info', 'message': 'm',
            'metadata': {'outer': {'a.b': 1}}})
        self.assertProblem(resp, 422, fields=['/metadata/outer/a.b'])

    def test_operator_objects_are_never_values_of_fields(self):
        execution_id = self.new_execution()
        for field in ('level', 'message', 'node_id'):
            with self.subTest(field=field):
                body = {'level': 'info', 'message': 'm',
                        field: {'$ne': 'x'}}
                self.assertProblem(self.post_logs(execution_id, body), 422,
                                   fields=['/' + field])

    def test_level_filter_takes_only_a_level(self):
        execution_id = self.new_execution()
        self.assertJson(self.post_logs(execution_id, [
            {'level': 'info', 'message': 'i'},
            {'level': 'error', 'message': 'e'},
            {'level': 'info', 'message': 'j'}]), 201)
        page = self.assertJson(self.call(
            'GET', self.logs_path(execution_id) + '?level=info'), 200)
        self.assertEqual([e['message'] for e in page['items']], ['j', 'i'])
        for value in ('%7B%22%24ne%22%3A%22x%22%7D', 'INFO', '', 'info%00'):
            with self.subTest(level=value):
                resp = self.call('GET', self.logs_path(execution_id) +
                                 '?level=' + value)
                self.assertProblem(resp, 400)

    def test_logs_are_listed_newest_first_page_by_page(self):
        execution_id = self.new_execution()
        for batch in range(5):
            self.assertJson(self.post_logs(execution_id, [
                {'level': 'info', 'message': '%d-%d' % (batch, i)}
                for i in range(5)]), 201)
        expected = ['%d-%d' % (b, i) for b in range(5) for i in range(5)]
        expected.reverse()

        seen, cursor, pages = [], None, 0
        while True:
            path = self.logs_path(execution_id) + '?limit=10'
            if cursor:
                path += '&cursor=' + cursor
            page = self.assertJson(self.call('GET', path), 200)
            self.assertEqual(set(page), {'items', 'next_cursor'})
            seen += [e['message'] for e in page['items']]
            pages += 1
            cursor = page['next_cursor']
            if cursor is None:
                break
        self.assertEqual(seen, expected)
        self.assertEqual(pages, 3)

    def test_a_page_holds_twenty_entries_by_default(self):
        execution_id = self.new_execution()
        self.assertJson(self.post_logs(execution_id, [
            {'level': 'info', 'message': str(i)} for i in range(21)]), 201)
        page = self.assertJson(self.call('GET',
                                         self.logs_path(execution_id)), 200)
        self.assertEqual(len(page['items']), 20)
        self.assertIsNotNone(page['next_cursor'])
        self.assertEqual(set(page['items'][0]), LOG_KEYS)

    def test_entries_written_between_pages_neither_repeat_nor_vanish(self):
        execution_id = self.new_execution()
        self.assertJson(self.post_logs(execution_id, [
            {'level': 'info', 'message': 'old%d' % i} for i in range(4)]),
            201)
        first = self.assertJson(self.call(
            'GET', self.logs_path(execution_id) + '?limit=2'), 200)
        self.assertJson(self.post_logs(execution_id, {
            'level': 'info', 'message': 'new'}), 201)
        second = self.assertJson(self.call(
            'GET', self.logs_path(execution_id) + '?limit=2&cursor=' +
            first['next_cursor']), 200)
        self.assertEqual([e['message'] for e in first['items']],
                         ['old3', 'old2'])
        self.assertEqual([e['message'] for e in second['items']],
                         ['old1', 'old0'])

    def test_a_forged_or_foreign_cursor_answers_400(self):
        execution_id = self.new_execution()
        self.assertJson(self.post_logs(execution_id, [
            {'level': 'info', 'message': str(i)} for i in range(3)]), 201)
        # A cursor of the agents list carries a position, not an entry.
        for i in range(2):
            self.assertJson(self.call('POST', '/api/v1/agents', json={
                'name': 'a%d' % i, 'role': 'r', 'goal': 'g'}), 201)
        agents = self.assertJson(self.call('GET', '/api/v1/agents?limit=1'),
                                 200)
        logs = self.assertJson(self.call(
            'GET', self.logs_path(execution_id) + '?limit=1'), 200)
        for cursor in (agents['next_cursor'], logs['next_cursor'][:-2] + 'AA',
                       'not-a-cursor'):
            with self.subTest(cursor=cursor):
                resp = self.call('GET', self.logs_path(execution_id) +
                                 '?cursor=' + cursor)
                self.assertProblem(resp, 400, fields=['cursor'])

    def test_logs_of_another_tenants_execution_answer_404(self):
        other = self.stack.new_tenant('other')
        foreign = self.new_execution(tenant=other)
        post = self.post_logs(foreign, {'level': 'info', 'message': 'm'})
        get = self.call('GET', self.logs_path(foreign))
        unknown = self.call('GET', self.logs_path(random_uuid()))
        self.assertProblem(post, 404)
        self.assertProblem(get, 404)
        self.assertSameProblem(get, unknown)
        self.assertEqual(self.stored('execution_logs',
                                     {'execution_id': foreign}), [])
        self.assertEqual(self.stored('execution_logs',
                                     {'execution_id': foreign},
                                     tenant=other), [])

    def test_logs_of_an_unknown_execution_answer_404(self):
        resp = self.post_logs(random_uuid(), {'level': 'info',
                                              'message': 'm'})
        self.assertProblem(resp, 404)

    def test_each_tenant_reads_only_its_own_collection(self):
        other = self.stack.new_tenant('own')
        mine = self.new_execution()
        theirs = self.new_execution(tenant=other)
        self.assertJson(self.post_logs(mine, {'level': 'info',
                                              'message': 'mine'}), 201)
        self.assertJson(self.post_logs(theirs, {'level': 'info',
                                                'message': 'theirs'},
                                       tenant=other), 201)
        self.assertEqual([d['message'] for d in self.stored(
            'execution_logs', {'execution_id': mine})], ['mine'])
        self.assertEqual([d['message'] for d in self.stored(
            'execution_logs', {'execution_id': theirs}, tenant=other)],
            ['theirs'])
        self.assertEqual(self.stored('execution_logs',
                                     {'execution_id': theirs}), [])

    def test_viewers_read_and_members_write(self):
        viewer = self.invite('viewer')
        member = self.invite('member')
        execution_id = self.new_execution()
        entry = {'level': 'info', 'message': 'm'}
        self.assertProblem(self.post_logs(execution_id, entry, token=viewer),
                           403)
        self.assertJson(self.post_logs(execution_id, entry, token=member),
                        201)
        page = self.assertJson(self.call('GET', self.logs_path(execution_id),
                                         token=viewer), 200)
        self.assertEqual(len(page['items']), 1)


# ---------------------------------------------------------------------
# Chat messages.
# ---------------------------------------------------------------------

class ChatMessageTest(MongoTestCase):

    def messages_path(self, conversation_id):
        return '/api/v1/conversations/%s/messages' % conversation_id

    def post_message(self, conversation_id, body, **kwargs):
        return self.call('POST', self.messages_path(conversation_id),
                         json=body, **kwargs)

    def test_a_message_answers_201_with_the_message(self):
        cid = random_uuid()
        resp = self.post_message(cid, {
            'role': 'assistant', 'content': 'Let me look.',
            'tool_calls': [{'id': 'c1', 'name': 'search',
                            'arguments': {'q': 'x'}}],
            'metadata': {'tokens': 7}})
        message = self.assertJson(resp, 201)
        self.assertEqual(set(message), MESSAGE_KEYS)
        self.assertUuid(message['id'])
        self.assertTimestamp(message['timestamp'])
        self.assertEqual(message['conversation_id'], cid)
        self.assertEqual(message['role'], 'assistant')
        self.assertEqual(message['tool_calls'],
                         [{'id': 'c1', 'name': 'search',
                           'arguments': {'q': 'x'}}])
        self.assertEqual(resp.headers['Location'], self.messages_path(cid))

        [doc] = self.stored('chat_messages', {'conversation_id': cid})
        self.assertIsInstance(doc['timestamp'], datetime.datetime)
        self.assertIsInstance(doc['tool_calls'], list)
        self.assertEqual(doc['content'], 'Let me look.')

    def test_the_conversation_id_is_canonicalised(self):
        cid = random_uuid()
        self.assertJson(self.post_message(cid.upper(), {
            'role': 'user', 'content': 'hi'}), 201)
        page = self.assertJson(self.call('GET', self.messages_path(cid)),
                               200)
        self.assertEqual([m['conversation_id'] for m in page['items']],
                         [cid])

    def test_a_conversation_id_that_is_not_a_uuid_answers_404(self):
        for cid in ('general', '1', '%7B%22%24ne%22%3A1%7D'):
            with self.subTest(cid=cid):
                resp = self.post_message(cid, {'role': 'user',
                                               'content': 'x'})
                self.assertProblem(resp, 404)

    def test_messages_are_listed_oldest_first_page_by_page(self):
        cid = random_uuid()
        roles = ['system', 'user', 'assistant', 'tool', 'user']
        for i in range(12):
            self.assertJson(self.post_message(cid, {
                'role': roles[i % len(roles)], 'content': 'c%d' % i}), 201)
        seen, cursor = [], None
        while True:
            path = self.messages_path(cid) + '?limit=5'
            if cursor:
                path += '&cursor=' + cursor
            page = self.assertJson(self.call('GET', path), 200)
            seen += [m['content'] for m in page['items']]
            cursor = page['next_cursor']
            if cursor is None:
                break
        self.assertEqual(seen, ['c%d' % i for i in range(12)])

    def test_role_filter(self):
        cid = random_uuid()
        for role in ('user', 'assistant', 'user'):
            self.assertJson(self.post_message(cid, {'role': role,
                                                    'content': role}), 201)
        page = self.assertJson(self.call(
            'GET', self.messages_path(cid) + '?role=user'), 200)
        self.assertEqual([m['role'] for m in page['items']],
                         ['user', 'user'])
        self.assertProblem(self.call(
            'GET', self.messages_path(cid) + '?role=admin'), 400,
            fields=['role'])

    def test_an_unknown_conversation_is_an_empty_list(self):
        page = self.assertJson(self.call(
            'GET', self.messages_path(random_uuid())), 200)
        self.assertEqual(page, {'items': [], 'next_cursor': None})

    def test_each_bad_message_shape_answers_422_naming_the_field(self):
        good = {'role': 'user', 'content': 'hi'}
        cases = [
            ({'content': 'x'}, '/role'),
            ({'role': 'user'}, '/content'),
            (dict(good, role='admin'), '/role'),
            (dict(good, role={'$in': ['user']}), '/role'),
            (dict(good, content=None), '/content'),
            (dict(good, content={'text': 'x'}), '/content'),
            (dict(good, tool_calls={'name': 'x'}), '/tool_calls'),
            (dict(good, tool_calls=['x']), '/tool_calls/0'),
            (dict(good, tool_calls=[{}] * 129), '/tool_calls'),
            (dict(good, metadata=[]), '/metadata'),
            (dict(good, conversation_id=random_uuid()), '/conversation_id'),
            (dict(good, timestamp='2026-01-01T00:00:00Z'), '/timestamp'),
            (dict(good, sender='me'), '/sender'),
        ]
        cid = random_uuid()
        for body, field in cases:
            with self.subTest(body=body):
                self.assertProblem(self.post_message(cid, body), 422,
                                   fields=[field])
        self.assertProblem(self.post_message(cid, [good]), 422, fields=[''])
        self.assertEqual(self.stored('chat_messages',
                                     {'conversation_id': cid}), [])

    def test_empty_member_names_in_a_message_are_refused(self):
        cid = random_uuid()
        resp = self.post_message(cid, {'role': 'user', 'content': 'x',
                                        'tool_calls': [{'': 1}]})
        self.assertProblem(resp, 422, fields=['/tool_calls/0/'])

    def test_every_bad_member_name_is_reported(self):
        cid = random_uuid()
        resp = self.post_message(cid, {
            'role': 'user', 'content': 'x',
            'tool_calls': [{'$set': 1}], 'metadata': {'a': {'b.c': 1}}})
        self.assertProblem(resp, 422, fields=['/tool_calls/0/$set',
                                              '/metadata/a/b.c'])

    def test_dollar_keys_in_tool_calls_and_metadata_are_refused(self):
        cid = random_uuid()
        cases = [
            ({'tool_calls': [{'name': 'x', 'arguments': {'$eval': 1}}]},
             '/tool_calls/0/arguments/$eval'),
            ({'tool_calls': [{'a.b': 1}]}, '/tool_calls/0/a.b'),
            ({'metadata': {'$inc': {'n': 1}}}, '/metadata/$inc'),
        ]
        for extra, field in cases:
            with self.subTest(extra=extra):
                body = dict({'role': 'tool', 'content': 'r'}, **extra)
                self.assertProblem(self.post_message(cid, body), 422,
                                   fields=[field])
        self.assertEqual(self.stored('chat_messages',
                                     {'conversation_id': cid}), [])

    def test_an_empty_content_is_a_message(self):
        cid = random_uuid()
        message = self.assertJson(self.post_message(cid, {
            'role': 'assistant', 'content': '',
            'tool_calls': [{'name': 'x'}]}), 201)
        self.assertEqual(message['content'], '')

    def test_conversations_are_per_tenant(self):
        other = self.stack.new_tenant('chat')
        cid = random_uuid()
        self.assertJson(self.post_message(cid, {'role': 'user',
                                                'content': 'mine'}), 201)
        page = self.assertJson(self.call('GET', self.messages_path(cid),
                                         tenant=other), 200)
        self.assertEqual(page['items'], [])
        self.assertEqual(self.stored('chat_messages',
                                     {'conversation_id': cid}, tenant=other),
                         [])

    def test_viewers_read_and_members_write(self):
        viewer = self.invite('viewer')
        member = self.invite('member')
        cid = random_uuid()
        body = {'role': 'user', 'content': 'x'}
        self.assertProblem(self.post_message(cid, body, token=viewer), 403)
        self.assertJson(self.post_message(cid, body, token=member), 201)
        page = self.assertJson(self.call('GET', self.messages_path(cid),
                                         token=viewer), 200)
        self.assertEqual(len(page['items']), 1)

    def test_the_openapi_document_describes_the_routes(self):
        doc = self.assertJson(self.call('GET', '/api/v1/openapi.json'), 200)
        item = doc['paths']['/api/v1/conversations/{id}/messages']
        self.assertEqual(set(item) - {'servers', 'parameters'},
                         {'get', 'post'})
        self.assertTrue(item['post']['requestBody']['required'])
        logs = doc['paths']['/api/v1/executions/{id}/logs']['post']
        self.assertTrue(logs['requestBody']['required'])
        self.assertIn('503', logs['responses'])


# ---------------------------------------------------------------------
# What only a real MongoDB does.
# ---------------------------------------------------------------------

@unittest.skipUnless(REAL_URI, NO_REAL_MONGODB)
class RealMongoTest(MongoTestCase):

    stack_options = {'mongodb_uri': real_stack_uri()} if REAL_URI else {}
    database = REAL_DATABASE

    @classmethod
    def tearDownClass(cls):
        host, port, _ = mongowire.parse_uri(REAL_URI)
        with mongowire.Client(host, port) as client:
            client.command(REAL_DATABASE, {'dropDatabase': 1})
        super().tearDownClass()

    def wire(self):
        host, port, _ = mongowire.parse_uri(REAL_URI)
        return mongowire.Client(host, port)

    def valid_log(self, **changes):
        doc = {'_id': mongowire.ObjectId(os.urandom(12)),
               'execution_id': random_uuid(), 'level': 'info',
               'message': 'm',
               'timestamp': datetime.datetime.now(datetime.timezone.utc)}
        doc.update(changes)
        return {k: v for k, v in doc.items() if v is not None}

    def insert(self, *docs):
        with self.wire() as client:
            return client.insert(self.database,
                                 self.collection('execution_logs'), docs)

    def test_the_server_refuses_documents_that_break_the_validator(self):
        cases = [
            self.valid_log(level='loud'),
            self.valid_log(message=None),
            self.valid_log(timestamp='2026-01-01T00:00:00Z'),
            self.valid_log(metadata='not an object'),
        ]
        for doc in cases:
            with self.subTest(doc=doc):
                reply = self.insert(doc)
                self.assertEqual(reply.get('n'), 0, reply)
                self.assertEqual(reply['writeErrors'][0]['code'], 121)
        self.assertEqual(self.insert(self.valid_log()).get('n'), 1)

    def test_ids_are_unique(self):
        doc = self.valid_log()
        self.assertEqual(self.insert(doc).get('n'), 1)
        reply = self.insert(doc)
        self.assertEqual(reply['writeErrors'][0]['code'], 11000)

    def test_the_ttl_index_removes_old_entries(self):
        old = datetime.datetime.now(datetime.timezone.utc) - \
            datetime.timedelta(days=31)
        stale = self.valid_log(timestamp=old)
        fresh = self.valid_log()
        self.assertEqual(self.insert(stale, fresh).get('n'), 2)

        # MongoDB's TTL monitor wakes once a minute.
        def expired():
            ids = [d['_id'] for d in self.stored(
                'execution_logs', {'_id': {'$in': [stale['_id'],
                                                   fresh['_id']]}})]
            return ids == [fresh['_id']]
        self.assertTrue(wait_for(expired, 150, 5),
                        'the 31-day-old entry is still there')

    def test_a_ttl_change_reaches_the_index(self):
        tenant = self.stack.new_tenant('realttl')
        self.stack.crewctl('mongo', 'ttl', '--tenant', tenant.slug,
                           '--execution-logs', '3')
        with self.wire() as client:
            indexes = {i['name']: i for i in client.list_indexes(
                self.database, self.collection('execution_logs', tenant))}
        self.assertEqual(indexes['timestamp_1']['expireAfterSeconds'],
                         3 * DAY)

    def test_logs_round_trip_through_the_api(self):
        execution_id = self.new_execution()
        path = '/api/v1/executions/%s/logs' % execution_id
        self.assertJson(self.call('POST', path, json=[
            {'level': 'info', 'message': 'a'},
            {'level': 'error', 'message': 'b', 'metadata': {'x': [1]}}]),
            201)
        page = self.assertJson(self.call('GET', path), 200)
        self.assertEqual([e['message'] for e in page['items']], ['b', 'a'])


if __name__ == '__main__':
    crewtest.main()
