"""The audit trail in MongoDB: the shipper moves outbox entries to the
tenant's audit collection, GET /api/v1/audit-logs reads them, and a
MongoDB outage loses nothing.

The stack runs the local MongoDB-protocol server, whose data dies with
it: after a restart only what was shipped since is there.
"""

import json
import os
import signal
import time

import crewtest
import mongowire
from crewtest import DEFAULT_PASSWORD, StackTestCase, random_uuid
from stack import pid_alive, wait_for

USER_AGENT = 'audit-logs-test/1.0'
ENTRY_KEYS = {'id', 'user_id', 'action', 'resource_type', 'resource_id',
              'changes', 'ip_address', 'user_agent', 'timestamp'}


def agent_body(**changes):
    body = {'name': 'shipped', 'role': 'Courier', 'goal': 'Deliver'}
    body.update(changes)
    return body


def object_id(entry_id):
    """The ObjectId an entry id stands for (the layout of lib/mongo.h:
    oooooooo-oooo-80oo-80oo-oooooooo0000)."""
    h = entry_id.replace('-', '')
    return mongowire.ObjectId(h[0:12] + h[14:16] + h[18:20] + h[20:28])


def entry_id():
    """A new entry id made as lib/audit.c makes them: 60 bits of time
    (milliseconds << 12), 36 random bits, in that layout."""
    oid = '%015x' % (int(time.time() * 1000) << 12) + \
        os.urandom(5).hex()[:9]
    h = oid[0:12] + '80' + oid[12:14] + '80' + oid[14:16] + oid[16:24] + \
        '0000'
    return '-'.join((h[0:8], h[8:12], h[12:16], h[16:20], h[20:32]))


def to_ms(text):
    """An RFC 3339 time as whole milliseconds of its text (no float)."""
    whole, _, fraction = text.rstrip('Z').partition('.')
    return whole, (fraction + '000')[:3]


class AuditLogsTestCase(StackTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant = cls.stack.new_tenant('trail')
        cls.schema = cls.stack.tenant_schema(cls.tenant.id)
        cls.admin_id = cls.stack.psql_value(
            "SELECT id FROM public.users WHERE tenant_id = :'t'",
            t=cls.tenant.id)

    def call(self, method, path, tenant=None, token=None, **kwargs):
        tenant = tenant or self.tenant
        kwargs.setdefault('headers', {'User-Agent': USER_AGENT})
        return self.stack.request(
            method, path, host=tenant.slug,
            token=tenant.token if token is None else token, **kwargs)

    def create_agent(self, tenant=None, **changes):
        return self.assertJson(self.call('POST', '/api/v1/agents',
                                         tenant=tenant,
                                         json=agent_body(**changes)), 201)

    def logs(self, query='', tenant=None, token=None):
        return self.call('GET', '/api/v1/audit-logs' + query, tenant=tenant,
                         token=token)

    def stored(self, tenant=None):
        """The documents of the tenant's audit collection, as MongoDB
        holds them (read with a client of the tests' own)."""
        tenant = tenant or self.tenant
        with mongowire.Client('127.0.0.1', self.stack.mongo_port) as wire:
            return wire.find('crewd', 'audit_logs_' + tenant.id)

    def outbox(self, schema=None):
        """The ids waiting in the outbox, oldest first."""
        return [row[0] for row in self.stack.psql(
            'SELECT id FROM :"schema".audit_outbox ORDER BY id',
            schema=schema or self.schema)]

    def all_entries(self, query='', tenant=None, patient=False):
        """Every entry the list shows, page by page, newest first.
        patient: None when a page answers 503 with Retry-After (a worker
        that last found MongoDB down waits that long before it asks
        again, even when MongoDB is back)."""
        items, cursor = [], None
        for _ in range(100):
            q = query + ('&' if query else '?') + 'limit=100'
            if cursor:
                q += '&cursor=' + cursor
            resp = self.logs(q, tenant=tenant)
            if (patient and resp.status == 503 and
                    resp.headers.get('Retry-After')):
                return None
            body = self.assertJson(resp, 200)
            items += body['items']
            cursor = body['next_cursor']
            if cursor is None:
                return items
        self.fail('more than 100 pages')

    def shipped(self, count, query='', tenant=None, schema=None,
                timeout=20):
        """Waits until the outbox is empty and the list shows count
        entries; returns them."""
        def arrived():
            if self.outbox(schema):
                return None
            items = self.all_entries(query, tenant, patient=True)
            return items if items is not None and len(items) >= count \
                else None
        items = wait_for(arrived, timeout, 0.1)
        self.assertIsNotNone(items, 'not shipped: outbox %r' %
                             self.outbox(schema))
        self.assertEqual(len(items), count, items)
        return items


class ShippingTest(AuditLogsTestCase):

    def test_an_entry_reaches_the_collection_and_leaves_the_outbox(self):
        agent = self.create_agent()
        items = self.shipped(1, '?resource_id=' + agent['id'])
        entry = items[0]
        self.assertEqual(set(entry), ENTRY_KEYS)
        self.assertUuid(entry['id'])
        self.assertEqual(entry['user_id'], self.admin_id)
        self.assertEqual(entry['action'], 'create')
        self.assertEqual(entry['resource_type'], 'agent')
        self.assertEqual(entry['resource_id'], agent['id'])
        self.assertEqual(entry['changes'], {'before': None, 'after': agent})
        self.assertEqual(entry['ip_address'], '127.0.0.1')
        self.assertEqual(entry['user_agent'], USER_AGENT)
        self.assertTimestamp(entry['timestamp'])
        self.assertEqual(to_ms(entry['timestamp']),
                         to_ms(agent['created_at']))

    def test_update_and_delete_arrive_with_before_and_after(self):
        agent = self.create_agent(config={'api_key': 'sk-1', 'depth': 2})
        changed = self.assertJson(self.call(
            'PATCH', '/api/v1/agents/' + agent['id'],
            json={'name': 'renamed'}), 200)
        self.assertStatus(self.call('DELETE',
                                    '/api/v1/agents/' + agent['id']), 204)
        items = self.shipped(3, '?resource_id=' + agent['id'])
        masked = dict(agent, config={'api_key': '***', 'depth': 2})
        changed['config'] = masked['config']
        self.assertEqual([(e['action'], e['changes']) for e in items], [
            ('delete', {'before': changed, 'after': None}),
            ('update', {'before': masked, 'after': changed}),
            ('create', {'before': None, 'after': masked})])

    def test_member_names_mongodb_refuses_arrive_unchanged(self):
        config = {'a.b': 1, '$where': {'x.y': [{'%2E': True}]}, '50%': None}
        agent = self.create_agent(config=config)
        entry = self.shipped(1, '?resource_id=' + agent['id'])[0]
        self.assertEqual(entry['changes']['after']['config'], config)

        # Stored escaped, as MongoDB allows them.
        [doc] = [d for d in self.stored()
                 if d['_id'] == object_id(entry['id'])]
        self.assertEqual(doc['changes']['after']['config'], {
            'a%2Eb': 1, '%24where': {'x%2Ey': [{'%252E': True}]},
            '50%25': None})

    def test_an_empty_member_name_does_not_stop_the_trail(self):
        # A member may store {"": ...} in a config; the trail must carry
        # it and everything after it.
        first = self.create_agent(config={'': {'x': 1}})
        second = self.create_agent(config={'k': 'v'})
        entry = self.shipped(1, '?resource_id=' + first['id'])[0]
        self.assertEqual(entry['changes']['after']['config'], {'': {'x': 1}})
        self.shipped(1, '?resource_id=' + second['id'])

    def test_a_users_password_never_reaches_mongodb(self):
        password = 'the password of a shipped user'
        user = self.assertJson(self.call('POST', '/api/v1/users', json={
            'email': 'shipped@trail.test', 'password': password,
            'role': 'viewer'}), 201)
        entry = self.shipped(1, '?resource_id=' + user['id'])[0]
        self.assertEqual(entry['changes']['after'],
                         dict(user, password='***'))
        self.assertNotIn(password, json.dumps(entry))

    def test_a_row_shipped_twice_is_stored_once(self):
        agent = self.create_agent()
        first = self.shipped(1, '?resource_id=' + agent['id'])[0]

        # As if the delete of a shipped batch had not committed: the same
        # row is in the outbox again, and the shipper is told.
        self.stack.psql(
            'INSERT INTO :"schema".audit_outbox (id, user_id, action,'
            " resource_type, resource_id, changes, created_at) VALUES"
            " (:'id', :'user', 'create', 'agent', :'agent', :'changes',"
            " :'at')", schema=self.schema, id=first['id'],
            user=self.admin_id, agent=agent['id'],
            changes=json.dumps(first['changes']), at=agent['created_at'])
        self.stack.psql("SELECT pg_notify('crewd_audit', :'t')",
                        t=self.tenant.id)
        self.assertTrue(wait_for(lambda: not self.outbox(), 10))
        items = self.all_entries('?resource_id=' + agent['id'])
        self.assertEqual([e['id'] for e in items], [first['id']])
        self.assertEqual([d['_id'] for d in self.stored()].count(
            object_id(first['id'])), 1)

    def test_a_backlog_of_many_batches_arrives_once_and_in_order(self):
        tenant = self.stack.new_tenant('backlog')
        schema = self.stack.tenant_schema(tenant.id)
        self.shipped(2, tenant=tenant, schema=schema)

        # 1100 entries (batches of at most 500), eight of them of 3 MB
        # (batches of at most 8 MiB), written at once, with ids in the
        # layout crewd makes: 6 bytes of time, then a counter.
        self.stack.psql(
            'INSERT INTO :"schema".audit_outbox (id, user_id, action,'
            ' resource_type, resource_id, changes)'
            " SELECT (substr(t, 1, 8) || '-' || substr(t, 9, 4) || '-80'"
            " || substr(c, 1, 2) || '-80' || substr(c, 3, 2) || '-'"
            " || substr(c, 5, 8) || '0000')::uuid, :'user', 'update',"
            " 'agent', gen_random_uuid(), json_build_object('before',"
            " NULL, 'after', json_build_object('n', i, 'blob',"
            " CASE WHEN i % 150 = 7 THEN repeat('x', 3000000) END))"
            " FROM generate_series(1, 1100) AS i,"
            " lpad(to_hex((extract(epoch FROM now()) * 1000)::bigint), 12,"
            " '0') AS t, lpad(to_hex(i), 12, '0') AS c",
            schema=schema, user=self.admin_id)
        ids = self.outbox(schema)
        self.assertEqual(len(ids), 1100)
        self.stack.psql("SELECT pg_notify('crewd_audit', :'t')",
                        t=tenant.id)

        # Batches go one after another, and the local server stores an
        # insert_many's documents in the order given.
        self.assertTrue(wait_for(lambda: not self.outbox(schema), 60))
        stored = [d for d in self.stored(tenant)
                  if d['resource_type'] == 'agent']
        self.assertEqual([d['_id'] for d in stored],
                         [object_id(i) for i in ids])
        self.assertEqual([d['changes']['after']['n'] for d in stored],
                         list(range(1, 1101)))

    def test_chat_messages_and_log_batches_are_in_the_trail(self):
        conversation = random_uuid()
        message = self.assertJson(self.call(
            'POST', '/api/v1/conversations/%s/messages' % conversation,
            json={'role': 'user', 'content': 'hi',
                  'metadata': {'token': 'abc'}}), 201)
        entry = self.shipped(1, '?resource_type=chat_message'
                             '&resource_id=' + message['id'])[0]
        self.assertEqual(entry['changes']['after'],
                         dict(message, metadata={'token': '***'}))


class ListTest(AuditLogsTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A second admin, who also writes.
        email = 'second@trail.test'
        resp = cls.stack.request(
            'POST', '/api/v1/users', host=cls.tenant.slug,
            token=cls.tenant.token, json={'email': email, 'role': 'admin',
                                          'password': DEFAULT_PASSWORD})
        cls.second_id = resp.json()['id']
        cls.second_token = cls.stack.login(cls.tenant.slug, email)

    def test_pages_are_newest_first_and_see_every_entry_once(self):
        tenant = self.stack.new_tenant('pages')
        agents = [self.create_agent(tenant=tenant, name='page %d' % i)['id']
                  for i in range(5)]
        everything = self.shipped(7, tenant=tenant,
                                  schema=self.stack.tenant_schema(tenant.id))
        self.assertEqual([e['resource_id'] for e in everything[:5]],
                         agents[::-1])

        seen, cursor, pages = [], None, 0
        for _ in range(20):
            query = '?limit=3' + ('&cursor=' + cursor if cursor else '')
            body = self.assertJson(self.logs(query, tenant=tenant), 200)
            pages += 1
            self.assertEqual(set(body), {'items', 'next_cursor'})
            self.assertLessEqual(len(body['items']), 3)
            seen += body['items']
            cursor = body['next_cursor']
            if cursor is None:
                break
        self.assertEqual(pages, 3)
        self.assertEqual(seen, everything)
        self.assertEqual(len({e['id'] for e in seen}), len(seen))
        keys = [(e['timestamp'], e['id']) for e in seen]
        self.assertEqual(keys, sorted(keys, reverse=True))

    def test_filters_by_user_type_and_resource(self):
        mine = self.create_agent(name='mine')
        theirs = self.assertJson(self.call(
            'POST', '/api/v1/agents', token=self.second_token,
            json=agent_body(name='theirs')), 201)
        self.assertJson(self.call(
            'PATCH', '/api/v1/agents/' + theirs['id'],
            token=self.second_token, json={'goal': 'Other'}), 200)
        self.shipped(2, '?resource_id=' + theirs['id'])

        by_second = self.all_entries('?user_id=' + self.second_id)
        self.assertEqual([(e['action'], e['resource_id'])
                          for e in by_second],
                         [('update', theirs['id']),
                          ('create', theirs['id'])])
        agents = self.all_entries('?resource_type=agent')
        self.assertTrue(all(e['resource_type'] == 'agent' for e in agents))
        self.assertIn(mine['id'], {e['resource_id'] for e in agents})
        users = self.all_entries('?resource_type=user')
        self.assertIn(self.second_id, {e['resource_id'] for e in users})
        self.assertTrue(all(e['resource_type'] == 'user' for e in users))
        both = self.all_entries('?user_id=%s&resource_type=agent'
                                '&resource_id=%s' % (self.admin_id,
                                                     mine['id']))
        self.assertEqual([e['resource_id'] for e in both], [mine['id']])
        self.assertEqual(self.all_entries('?resource_id=' + random_uuid()),
                         [])

    def test_bad_filters_and_cursors_answer_400_naming_them(self):
        for query, field in (('?user_id=42', 'user_id'),
                             ('?resource_id=x', 'resource_id'),
                             ('?resource_type=Agent', 'resource_type'),
                             ('?resource_type=%7B%24ne%3A1%7D',
                              'resource_type'),
                             ('?limit=0', 'limit'),
                             ('?limit=101', 'limit'),
                             ('?cursor=abc', 'cursor')):
            with self.subTest(query=query):
                self.assertProblem(self.logs(query), 400, [field])
        self.assertProblem(self.logs('?action=create'), 400)
        self.assertProblem(self.logs('?user_id=%s&user_id=%s' % (
            self.admin_id, self.admin_id)), 400)

    def test_viewers_and_members_may_not_read_the_trail(self):
        for role in ('viewer', 'member'):
            email = '%s-%s@trail.test' % (role, os.urandom(3).hex())
            self.assertJson(self.call('POST', '/api/v1/users', json={
                'email': email, 'role': role,
                'password': DEFAULT_PASSWORD}), 201)
            token = self.stack.login(self.tenant.slug, email)
            with self.subTest(role=role):
                self.assertProblem(self.logs(token=token), 403)
        self.assertProblem(self.stack.request(
            'GET', '/api/v1/audit-logs', host=self.tenant.slug), 401)

    def test_a_tenant_sees_only_its_own_trail(self):
        other = self.stack.new_tenant('other')
        agent = self.create_agent(tenant=other)
        items = self.shipped(3, tenant=other,
                             schema=self.stack.tenant_schema(other.id))
        self.assertEqual({e['resource_type'] for e in items},
                         {'tenant', 'user', 'agent'})
        self.assertNotIn(agent['id'], {e['resource_id']
                                       for e in self.all_entries()})


class ShipperProcessTest(AuditLogsTestCase):

    def test_the_master_runs_one_shipper_beside_the_workers(self):
        master, workers = self.stack.crewd_pids()
        self.assertEqual(len(workers), self.stack.workers)
        self.assertEqual(len(self.stack.shipper_pids()), 1)

    def test_a_shipper_that_dies_is_replaced_and_ships(self):
        [old] = self.stack.shipper_pids()
        os.kill(old, signal.SIGKILL)
        new = wait_for(lambda: [p for p in self.stack.shipper_pids()
                                if p != old], 10)
        self.assertTrue(new, 'no new shipper')
        agent = self.create_agent()
        self.shipped(1, '?resource_id=' + agent['id'])

    def test_a_reload_replaces_the_shipper(self):
        [old] = self.stack.shipper_pids()
        self.stack.reload_crewd()
        self.assertTrue(wait_for(
            lambda: self.stack.shipper_pids() and
            old not in self.stack.shipper_pids() and not pid_alive(old),
            15), self.stack.shipper_pids())
        self.assertEqual(len(self.stack.shipper_pids()), 1)
        agent = self.create_agent()
        self.shipped(1, '?resource_id=' + agent['id'])


class OutageTest(AuditLogsTestCase):
    """MongoDB stopped and started again: a stack of its own."""

    stack_options = {'audit_sweep_interval': 5}

    def tearDown(self):
        if self.stack.mongo is None:
            self.stack.start_mongo()
        super().tearDown()

    def test_entries_nobody_announced_are_found_by_the_sweep(self):
        """An entry written with no notification (as one is while no
        shipper listens) waits for the sweep, every audit_sweep_interval
        seconds.  The shipper runs as the application role, which cannot
        read a tenant's schema in the roles mode: the sweep asks
        public.crewd_outboxes_waiting(), and the entry is shipped."""
        tenant = self.stack.new_tenant('swept')
        schema = self.stack.tenant_schema(tenant.id)
        self.shipped(2, tenant=tenant, schema=schema)   # the sign-up's
        user_id = self.stack.psql_value(
            "SELECT id FROM public.users WHERE tenant_id = :'t'",
            t=tenant.id)
        entry, resource = entry_id(), random_uuid()
        self.stack.psql(
            'INSERT INTO :"schema".audit_outbox (id, user_id, action,'
            " resource_type, resource_id, changes) VALUES (:'e', :'u',"
            " 'delete', 'agent', :'r', '{\"before\": {}, \"after\": null}')",
            superuser=True, schema=schema, e=entry, u=user_id, r=resource)
        items = self.shipped(1, '?resource_id=' + resource, tenant=tenant,
                             schema=schema, timeout=20)
        self.assertEqual([(e['id'], e['action']) for e in items],
                         [(entry, 'delete')])
        self.assertNotIn('permission denied', self.stack.crewd_log())

    def test_nothing_is_lost_while_mongodb_is_down(self):
        self.shipped(2)     # the sign-up's entries
        self.stack.stop_mongo()

        # The trail cannot be read, and says when to ask again.
        resp = self.logs()
        self.assertProblem(resp, 503)
        self.assertTrue(resp.headers.get('Retry-After', '').isdigit(),
                        resp.headers)

        # Agents can still be made; their entries wait in the outbox.
        agents = [self.create_agent(name='during %d' % i)['id']
                  for i in range(6)]
        waiting = wait_for(lambda: len(self.outbox()) == 6 and
                           self.outbox(), 10)
        self.assertEqual(len(waiting), 6)
        time.sleep(3)       # the shipper tries, and keeps them
        self.assertEqual(self.outbox(), waiting)
        resource_ids = [row[0] for row in self.stack.psql(
            'SELECT resource_id FROM :"schema".audit_outbox ORDER BY id',
            schema=self.schema)]
        self.assertEqual(resource_ids, agents)

        # A tenant signs up meanwhile: its entries wait too.
        late = self.stack.new_tenant('late')
        late_schema = self.stack.tenant_schema(late.id)
        self.assertEqual(len(self.outbox(late_schema)), 2)

        # MongoDB returns (empty): the backlog drains, each entry once,
        # in the order of the changes.
        self.stack.start_mongo()
        items = self.shipped(6, timeout=30)
        self.assertEqual([e['id'] for e in items], waiting[::-1])
        self.assertEqual([e['resource_id'] for e in items], agents[::-1])
        stored = self.stored()
        self.assertEqual(sorted(d['_id'].raw for d in stored),
                         sorted(object_id(i).raw for i in waiting))
        for doc in stored:
            self.assertEqual(set(doc), {
                '_id', 'user_id', 'action', 'resource_type', 'resource_id',
                'changes', 'ip_address', 'user_agent', 'timestamp'})

        late_items = self.shipped(2, tenant=late, schema=late_schema,
                                  timeout=30)
        self.assertEqual([e['resource_type'] for e in late_items],
                         ['user', 'tenant'])
        # Its collections were made, with their validators.
        inspected = self.stack.mongo_inspect(late.slug)
        audit = inspected['collections']['audit_logs']
        self.assertFalse(inspected['pending'], inspected)
        self.assertTrue(audit['exists'], inspected)
        self.assertIn('validator', audit['options'], inspected)


if __name__ == '__main__':
    crewtest.main()
