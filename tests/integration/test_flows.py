"""Flows: their definitions, the ?is_active filter, and who may see and
change them."""

import datetime
import time

import crewtest
from crewtest import StackTestCase, random_uuid

FLOW_KEYS = {'id', 'tenant_id', 'name', 'description', 'definition',
             'is_active', 'created_at', 'updated_at'}
EMPTY = {'nodes': [], 'edges': []}


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))


def flow_body(**changes):
    body = {'name': 'publish', 'definition': EMPTY}
    body.update(changes)
    return body


class FlowTestCase(StackTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant = cls.stack.new_tenant('flows')
        cls.schema = cls.stack.tenant_schema(cls.tenant.id)

    def call(self, method, path, token=None, **kwargs):
        return self.stack.request(
            method, path, host=self.tenant.slug,
            token=self.tenant.token if token is None else token, **kwargs)

    def create(self, **changes):
        resp = self.call('POST', '/api/v1/flows', json=flow_body(**changes))
        return self.assertJson(resp, 201), resp

    def create_crew(self, name='crew'):
        resp = self.call('POST', '/api/v1/crews', json={'name': name})
        return self.assertJson(resp, 201)['id']

    def create_agent(self, name='agent'):
        resp = self.call('POST', '/api/v1/agents', json={
            'name': name, 'role': 'Worker', 'goal': 'Work'})
        return self.assertJson(resp, 201)['id']

    def graph(self):
        """A valid definition: research (crew) -> write (agent)."""
        return {
            'nodes': [
                {'id': 'research', 'type': 'crew',
                 'crew_id': self.create_crew()},
                {'id': 'write', 'type': 'agent',
                 'agent_id': self.create_agent(),
                 'config': {'task': 'Write it up'}},
            ],
            'edges': [{'from': 'research', 'to': 'write'}],
        }

    def stored(self, flow_id, columns='name, is_active'):
        return self.stack.psql(
            'SELECT %s FROM :"schema".flows WHERE id = :\'id\'' % columns,
            schema=self.schema, id=flow_id)

    def count(self):
        return int(self.stack.psql_value(
            'SELECT count(*) FROM :"schema".flows', schema=self.schema))

    def errors(self, resp, status=422):
        """The problem's errors as {field: message}; each field once."""
        body = self.assertProblem(resp, status)
        fields = [e['field'] for e in body['errors']]
        self.assertEqual(len(fields), len(set(fields)), body)
        return {e['field']: e['message'] for e in body['errors']}


class FlowCreateTest(FlowTestCase):

    def test_create_answers_201_with_location_etag_and_defaults(self):
        body, resp = self.create()
        self.assertEqual(set(body), FLOW_KEYS)
        self.assertUuid(body['id'])
        self.assertEqual(body['tenant_id'], self.tenant.id)
        self.assertEqual(body['name'], 'publish')
        self.assertIsNone(body['description'])
        self.assertEqual(body['definition'], EMPTY)
        self.assertIs(body['is_active'], True)
        self.assertTimestamp(body['created_at'])
        self.assertEqual(body['created_at'], body['updated_at'])
        self.assertEqual(resp.headers.get('Location'),
                         '/api/v1/flows/' + body['id'])
        self.assertTrue(resp.headers.get('ETag'), resp.headers)

    def test_create_stores_the_definition_as_sent(self):
        graph = self.graph()
        body, _ = self.create(description='d', is_active=False,
                              definition=graph)
        self.assertEqual(body['definition'], graph)
        self.assertIs(body['is_active'], False)
        rows = self.stored(body['id'], 'tenant_id, description, is_active, '
                           "definition->'nodes'->0->>'crew_id'")
        self.assertEqual(rows, [(self.tenant.id, 'd', 'f',
                                 graph['nodes'][0]['crew_id'])])

    def test_create_stores_the_crew_and_agent_ids_canonical(self):
        graph = self.graph()
        sent = {'nodes': [dict(graph['nodes'][0],
                               crew_id=graph['nodes'][0]['crew_id'].upper()),
                          dict(graph['nodes'][1],
                               agent_id=graph['nodes'][1]['agent_id']
                               .upper())],
                'edges': graph['edges']}
        body, _ = self.create(definition=sent)
        self.assertEqual(body['definition'], graph)
        got = self.assertJson(
            self.call('GET', '/api/v1/flows/' + body['id']), 200)
        self.assertEqual(got['definition'], graph)

    def test_create_without_required_fields_answers_422_naming_each(self):
        resp = self.call('POST', '/api/v1/flows', json={})
        self.assertProblem(resp, 422, fields=['/name', '/definition'])

    def test_create_with_wrong_types_answers_422_naming_the_field(self):
        cases = [
            ('name', 5), ('name', None), ('name', ''), ('name', 'x' * 256),
            ('description', 7), ('definition', None), ('definition', []),
            ('definition', 'a -> b'), ('is_active', 'true'),
            ('is_active', None), ('is_active', 1),
        ]
        before = self.count()
        for field, value in cases:
            with self.subTest(field=field, value=value):
                resp = self.call('POST', '/api/v1/flows',
                                 json=flow_body(**{field: value}))
                self.assertProblem(resp, 422, fields=['/' + field])
        self.assertEqual(self.count(), before)

    def test_create_with_unknown_and_server_owned_fields_answers_422(self):
        for field, value in (('id', random_uuid()),
                             ('tenant_id', self.tenant.id),
                             ('created_at', '2026-01-01T00:00:00Z'),
                             ('updated_at', '2026-01-01T00:00:00Z'),
                             ('nodes', []), ('status', 'running')):
            with self.subTest(field=field):
                resp = self.call('POST', '/api/v1/flows',
                                 json=flow_body(**{field: value}))
                self.assertProblem(resp, 422, fields=['/' + field])

    def test_create_with_malformed_json_answers_400(self):
        resp = self.call('POST', '/api/v1/flows',
                         body='{"name": "x", "definition": {"nodes": [}',
                         headers={'Content-Type': 'application/json'})
        self.assertProblem(resp, 400)


class DefinitionTest(FlowTestCase):

    def refused(self, definition, **changes):
        before = self.count()
        resp = self.call('POST', '/api/v1/flows',
                         json=flow_body(definition=definition, **changes))
        errors = self.errors(resp)
        self.assertEqual(self.count(), before)
        return errors

    def node(self, node_id, **changes):
        node = {'id': node_id, 'type': 'crew', 'crew_id': self.crew}
        node.update(changes)
        return node

    def setUp(self):
        self.crew = self.create_crew()
        self.agent = self.create_agent()

    def test_a_valid_graph_is_accepted(self):
        graph = {
            'nodes': [self.node('a'), self.node('b'),
                      {'id': 'c', 'type': 'agent', 'agent_id': self.agent}],
            'edges': [{'from': 'a', 'to': 'b'}, {'from': 'a', 'to': 'c'},
                      {'from': 'b', 'to': 'c'}],
        }
        body, _ = self.create(definition=graph)
        self.assertEqual(body['definition'], graph)

    def test_nodes_and_edges_are_required(self):
        self.assertEqual(self.refused({}), {
            '/definition/nodes': 'is required',
            '/definition/edges': 'is required'})
        self.assertEqual(self.refused({'nodes': {}, 'edges': None}), {
            '/definition/nodes': 'must be an array',
            '/definition/edges': 'must be an array'})

    def test_unknown_members_are_named(self):
        self.assertEqual(self.refused({
            'nodes': [self.node('a', label='A')],
            'edges': [{'from': 'a', 'to': 'a', 'if': True}],
            'version': 2}), {
            '/definition/version': 'is not a known field',
            '/definition/nodes/0/label': 'is not a known field',
            '/definition/edges/0/if': 'is not a known field',
            '/definition/edges': 'the edges form a cycle: a -> a'})

    def test_duplicate_node_ids(self):
        errors = self.refused({'nodes': [self.node('a'), self.node('b'),
                                         self.node('a')], 'edges': []})
        self.assertEqual(errors, {
            '/definition/nodes/2/id':
            'duplicate node id: also the id of /definition/nodes/0'})

    def test_nodes_need_an_id_and_a_type(self):
        self.assertEqual(self.refused({'nodes': [
            {'crew_id': self.crew},
            self.node(7, type=''),
            self.node('x' * 65, type=None)], 'edges': []}), {
            '/definition/nodes/0/id': 'is required',
            '/definition/nodes/0/type': 'is required',
            '/definition/nodes/1/id': 'must be a string',
            '/definition/nodes/1/type': 'must not be empty',
            '/definition/nodes/2/id': 'must be at most 64 characters',
            '/definition/nodes/2/type': 'must be a string'})

    def test_nodes_need_exactly_one_crew_or_agent(self):
        neither = {'id': 'n', 'type': 't'}
        both = self.node('b', agent_id=self.agent)
        self.assertEqual(self.refused({'nodes': [neither, both,
                                                 'not an object'],
                                       'edges': []}), {
            '/definition/nodes/0': 'needs a crew_id or an agent_id',
            '/definition/nodes/1/agent_id':
            'must not be given with crew_id: a node runs a crew or an '
            'agent',
            '/definition/nodes/2': 'must be an object'})

    def test_unknown_crews_and_agents_are_named(self):
        self.assertEqual(self.refused({'nodes': [
            self.node('a', crew_id=random_uuid()),
            {'id': 'b', 'type': 'agent', 'agent_id': random_uuid()},
            {'id': 'c', 'type': 'agent', 'agent_id': self.crew},
            self.node('d', crew_id=self.agent),
            self.node('e', crew_id='not-a-uuid')], 'edges': []}), {
            '/definition/nodes/0/crew_id': 'no such crew',
            '/definition/nodes/1/agent_id': 'no such agent',
            '/definition/nodes/2/agent_id': 'no such agent',
            '/definition/nodes/3/crew_id': 'no such crew',
            '/definition/nodes/4/crew_id': 'must be a UUID'})

    def test_another_tenants_crews_and_agents_are_unknown(self):
        other = self.stack.new_tenant('otherdef')
        crew = self.assertJson(self.stack.request(
            'POST', '/api/v1/crews', host=other.slug, token=other.token,
            json={'name': 'theirs'}), 201)['id']
        agent = self.assertJson(self.stack.request(
            'POST', '/api/v1/agents', host=other.slug, token=other.token,
            json={'name': 'n', 'role': 'r', 'goal': 'g'}), 201)['id']
        self.assertEqual(self.refused({'nodes': [
            self.node('a', crew_id=crew),
            {'id': 'b', 'type': 'agent', 'agent_id': agent}],
            'edges': []}), {
            '/definition/nodes/0/crew_id': 'no such crew',
            '/definition/nodes/1/agent_id': 'no such agent'})

    def test_edges_must_name_nodes(self):
        self.assertEqual(self.refused({
            'nodes': [self.node('a'), self.node('b')],
            'edges': [{'from': 'a', 'to': 'c'}, {'from': 'B', 'to': 'a'},
                      {'to': 'b'}, {'from': 'a', 'to': 5}, ['a', 'b']]}), {
            '/definition/edges/0/to': 'no such node',
            '/definition/edges/1/from': 'no such node',
            '/definition/edges/2/from': 'is required',
            '/definition/edges/3/to': 'must be a string',
            '/definition/edges/4': 'must be an object'})

    def test_duplicate_edges(self):
        self.assertEqual(self.refused({
            'nodes': [self.node('a'), self.node('b')],
            'edges': [{'from': 'a', 'to': 'b'}, {'to': 'b', 'from': 'a'}]}),
            {'/definition/edges/1':
             'duplicate edge: the same as /definition/edges/0'})

    def test_cycles_are_shown(self):
        self.assertEqual(self.refused({
            'nodes': [self.node('start'), self.node('a'), self.node('b'),
                      self.node('c')],
            'edges': [{'from': 'start', 'to': 'a'}, {'from': 'a', 'to': 'b'},
                      {'from': 'b', 'to': 'c'}, {'from': 'c', 'to': 'a'}]}),
            {'/definition/edges': 'the edges form a cycle: '
             'a -> b -> c -> a'})

    def test_every_kind_of_problem_at_once(self):
        errors = self.refused({
            'nodes': [
                self.node('a'),
                self.node('a', type=None),
                {'id': 'b', 'type': 'agent', 'agent_id': random_uuid()},
                self.node('c', crew_id=random_uuid(), agent_id=self.agent),
                {'id': 'd', 'type': 'x', 'colour': 'red'},
                self.node('e', crew_id='e'),
                [],
            ],
            'edges': [
                {'from': 'a', 'to': 'b'},
                {'from': 'b', 'to': 'a'},
                {'from': 'a', 'to': 'zz'},
                {'from': 'a', 'to': 'b'},
                {'from': 'a'},
            ],
            'meta': {},
        }, name='', is_active='yes')
        self.assertEqual(errors, {
            '/name': 'must not be empty',
            '/is_active': 'must be true or false',
            '/definition/meta': 'is not a known field',
            '/definition/nodes/1/type': 'must be a string',
            '/definition/nodes/3/agent_id':
            'must not be given with crew_id: a node runs a crew or an '
            'agent',
            '/definition/nodes/4/colour': 'is not a known field',
            '/definition/nodes/4': 'needs a crew_id or an agent_id',
            '/definition/nodes/5/crew_id': 'must be a UUID',
            '/definition/nodes/6': 'must be an object',
            '/definition/nodes/1/id':
            'duplicate node id: also the id of /definition/nodes/0',
            '/definition/edges/2/to': 'no such node',
            '/definition/edges/4/to': 'is required',
            '/definition/edges/3':
            'duplicate edge: the same as /definition/edges/0',
            '/definition/edges': 'the edges form a cycle: a -> b -> a',
            '/definition/nodes/2/agent_id': 'no such agent',
        })

    def test_more_problems_than_shown_are_counted(self):
        resp = self.call('POST', '/api/v1/flows', json=flow_body(
            definition={'nodes': [{} for _ in range(20)], 'edges': []}))
        body = self.assertProblem(resp, 422)
        # Three problems per node; the problem shows the first 16.
        self.assertEqual(len(body['errors']), 16)
        self.assertEqual(body['errors_omitted'], 60 - 16)

    def test_no_errors_omitted_member_when_all_are_shown(self):
        resp = self.call('POST', '/api/v1/flows', json={})
        self.assertNotIn('errors_omitted', self.assertProblem(resp, 422))

    def test_the_largest_graph_is_accepted(self):
        nodes = [self.node('n%d' % i) for i in range(1000)]
        edges = [{'from': 'n%d' % i, 'to': 'n%d' % (i + 1)}
                 for i in range(999)]
        body, _ = self.create(definition={'nodes': nodes, 'edges': edges})
        self.assertEqual(len(body['definition']['nodes']), 1000)

    def test_too_many_nodes_or_edges_answer_422(self):
        self.assertEqual(self.refused({
            'nodes': [self.node('n%d' % i) for i in range(1001)],
            'edges': []}), {
            '/definition/nodes': 'must have at most 1000 nodes'})
        self.assertEqual(self.refused({
            'nodes': [self.node('a'), self.node('b')],
            'edges': [{'from': 'a', 'to': 'b'}] * 5001}), {
            '/definition/edges': 'must have at most 5000 edges'})

    def test_a_bad_definition_in_a_patch_changes_nothing(self):
        created, _ = self.create(definition=self.graph())
        resp = self.call('PATCH', '/api/v1/flows/' + created['id'], json={
            'name': 'renamed',
            'definition': {'nodes': [self.node('a')],
                           'edges': [{'from': 'a', 'to': 'a'}]}})
        self.assertEqual(self.errors(resp), {
            '/definition/edges': 'the edges form a cycle: a -> a'})
        got = self.assertJson(
            self.call('GET', '/api/v1/flows/' + created['id']), 200)
        self.assertEqual(got, created)


class FlowReadTest(FlowTestCase):

    def test_get_answers_200_with_the_flow_and_its_etag(self):
        created, create_resp = self.create(definition=self.graph())
        resp = self.call('GET', '/api/v1/flows/' + created['id'])
        self.assertEqual(self.assertJson(resp, 200), created)
        self.assertEqual(resp.headers.get('ETag'),
                         create_resp.headers.get('ETag'))

    def test_get_of_an_unknown_id_answers_404(self):
        self.assertProblem(
            self.call('GET', '/api/v1/flows/' + random_uuid()), 404)


class FlowListTest(FlowTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A tenant of its own, so the list holds exactly these six.
        cls.tenant = cls.stack.new_tenant('flowlist')
        cls.schema = cls.stack.tenant_schema(cls.tenant.id)
        cls.ids = []
        cls.active = [True, False, True, True, False, True]
        for i, active in enumerate(cls.active):
            resp = cls.stack.request('POST', '/api/v1/flows',
                                     host=cls.tenant.slug,
                                     token=cls.tenant.token,
                                     json=flow_body(name='flow %d' % i,
                                                    is_active=active))
            if resp.status != 201:
                raise AssertionError(resp)
            cls.ids.append(resp.json()['id'])
            time.sleep(0.002)

    def page(self, query):
        return self.call('GET', '/api/v1/flows' + query)

    def ids_where(self, active):
        return list(reversed([i for i, a in zip(self.ids, self.active)
                              if a == active]))

    def test_list_answers_newest_first(self):
        body = self.assertJson(self.page(''), 200)
        self.assertEqual([f['id'] for f in body['items']],
                         list(reversed(self.ids)))
        self.assertIsNone(body['next_cursor'])
        self.assertEqual(set(body['items'][0]), FLOW_KEYS)

    def test_list_pages_with_limit_and_cursor(self):
        seen, pages, query = [], [], '?limit=4'
        while True:
            body = self.assertJson(self.page(query), 200)
            pages.append(len(body['items']))
            seen += [f['id'] for f in body['items']]
            if body['next_cursor'] is None:
                break
            self.assertLess(len(pages), 10)
            query = '?limit=4&cursor=' + body['next_cursor']
        self.assertEqual(pages, [4, 2])
        self.assertEqual(seen, list(reversed(self.ids)))

    def test_is_active_filters(self):
        for value, active in (('true', True), ('false', False)):
            with self.subTest(is_active=value):
                body = self.assertJson(self.page('?is_active=' + value),
                                       200)
                self.assertEqual([f['id'] for f in body['items']],
                                 self.ids_where(active))
                self.assertTrue(all(f['is_active'] is active
                                    for f in body['items']))

    def test_is_active_filter_pages(self):
        first = self.assertJson(self.page('?is_active=true&limit=3'), 200)
        rest = self.assertJson(self.page('?limit=3&is_active=true&cursor=' +
                                         first['next_cursor']), 200)
        self.assertEqual([f['id'] for f in first['items'] + rest['items']],
                         self.ids_where(True))
        self.assertIsNone(rest['next_cursor'])

    def test_a_bad_is_active_value_answers_400_naming_it(self):
        for value in ('yes', '1', '', 'TRUE'):
            with self.subTest(value=value):
                self.assertProblem(self.page('?is_active=' + value), 400,
                                   fields=['is_active'])

    def test_an_unknown_or_repeated_parameter_answers_400(self):
        self.assertProblem(self.page('?active=true'), 400)
        self.assertProblem(self.page('?is_active=true&is_active=false'),
                           400)


class FlowUpdateTest(FlowTestCase):

    def test_patch_changes_only_the_given_fields(self):
        created, resp = self.create(description='keep')
        time.sleep(0.01)
        patched = self.call('PATCH', '/api/v1/flows/' + created['id'],
                            json={'is_active': False})
        body = self.assertJson(patched, 200)
        self.assertEqual(body, dict(created, is_active=False,
                                    updated_at=body['updated_at']))
        self.assertGreater(parse_time(body['updated_at']),
                           parse_time(created['updated_at']))
        self.assertNotEqual(patched.headers.get('ETag'),
                            resp.headers.get('ETag'))
        self.assertEqual(self.stored(created['id'], 'is_active'), [('f',)])

    def test_patch_replaces_the_whole_definition(self):
        created, _ = self.create(definition=self.graph())
        smaller = {'nodes': [{'id': 'only', 'type': 'crew',
                              'crew_id': self.create_crew()}],
                   'edges': []}
        body = self.assertJson(
            self.call('PATCH', '/api/v1/flows/' + created['id'],
                      json={'definition': smaller}), 200)
        self.assertEqual(body['definition'], smaller)

    def test_patch_with_a_stale_if_match_answers_412(self):
        created, resp = self.create()
        self.assertJson(self.call('PATCH', '/api/v1/flows/' + created['id'],
                                  json={'name': 'second'}), 200)
        stale = self.call('PATCH', '/api/v1/flows/' + created['id'],
                          json={'name': 'third'},
                          headers={'If-Match': resp.headers['ETag']})
        self.assertProblem(stale, 412)
        self.assertEqual(self.stored(created['id'], 'name'), [('second',)])

    def test_patch_with_the_current_if_match_answers_200(self):
        created, resp = self.create()
        patched = self.call('PATCH', '/api/v1/flows/' + created['id'],
                            json={'name': 'matched'},
                            headers={'If-Match': resp.headers['ETag']})
        self.assertEqual(self.assertJson(patched, 200)['name'], 'matched')

    def test_patch_with_invalid_fields_answers_422_and_changes_nothing(self):
        created, _ = self.create()
        for patch, field in (({'name': None}, '/name'),
                             ({'definition': None}, '/definition'),
                             # a merge patch that removes the edges
                             ({'definition': {'edges': None}},
                              '/definition/edges'),
                             ({'is_active': 'no'}, '/is_active'),
                             ({'id': random_uuid()}, '/id'),
                             ({'tenant_id': random_uuid()}, '/tenant_id')):
            with self.subTest(patch=patch):
                resp = self.call('PATCH', '/api/v1/flows/' + created['id'],
                                 json=patch)
                self.assertProblem(resp, 422, fields=[field])
        got = self.assertJson(
            self.call('GET', '/api/v1/flows/' + created['id']), 200)
        self.assertEqual(got, created)

    def test_patch_of_an_unknown_id_answers_404(self):
        resp = self.call('PATCH', '/api/v1/flows/' + random_uuid(),
                         json={'name': 'x'})
        self.assertProblem(resp, 404)


class FlowDeleteTest(FlowTestCase):

    def test_delete_answers_204_and_the_flow_is_gone(self):
        created, _ = self.create()
        resp = self.call('DELETE', '/api/v1/flows/' + created['id'])
        self.assertStatus(resp, 204)
        self.assertEqual(resp.body, b'')
        self.assertProblem(
            self.call('GET', '/api/v1/flows/' + created['id']), 404)
        self.assertEqual(self.stored(created['id']), [])

    def test_delete_with_a_stale_if_match_answers_412(self):
        created, resp = self.create()
        self.assertJson(self.call('PATCH', '/api/v1/flows/' + created['id'],
                                  json={'name': 'changed'}), 200)
        stale = self.call('DELETE', '/api/v1/flows/' + created['id'],
                          headers={'If-Match': resp.headers['ETag']})
        self.assertProblem(stale, 412)
        self.assertEqual(len(self.stored(created['id'])), 1)

    def test_delete_twice_answers_404(self):
        created, _ = self.create()
        self.assertStatus(
            self.call('DELETE', '/api/v1/flows/' + created['id']), 204)
        self.assertProblem(
            self.call('DELETE', '/api/v1/flows/' + created['id']), 404)

    def test_a_flow_with_executions_answers_409(self):
        created, _ = self.create()
        self.stack.psql(
            'INSERT INTO :"schema".executions (tenant_id, flow_id, user_id)'
            " VALUES (:'t', :'f', :'u')", schema=self.schema,
            t=self.tenant.id, f=created['id'], u=random_uuid())
        body = self.assertProblem(
            self.call('DELETE', '/api/v1/flows/' + created['id']), 409)
        self.assertIn('executions', body['detail'])
        self.assertEqual(len(self.stored(created['id'])), 1)

    def test_deleting_a_crew_a_flow_names_leaves_the_flow(self):
        graph = self.graph()
        created, _ = self.create(definition=graph)
        self.assertStatus(self.call(
            'DELETE', '/api/v1/crews/' + graph['nodes'][0]['crew_id']), 204)
        got = self.assertJson(
            self.call('GET', '/api/v1/flows/' + created['id']), 200)
        self.assertEqual(got['definition'], graph)


class OtherTenantTest(FlowTestCase):
    """Another tenant's flow answers exactly as a flow that exists
    nowhere, for every verb."""

    def test_every_verb_on_another_tenants_flow_answers_404(self):
        other = self.stack.new_tenant('otherflows')
        resp = self.stack.request('POST', '/api/v1/flows', host=other.slug,
                                  token=other.token,
                                  json=flow_body(name='theirs'))
        theirs = self.assertJson(resp, 201)
        etag = resp.headers['ETag']
        nowhere = random_uuid()

        for method, body in (('GET', None), ('PATCH', {'name': 'stolen'}),
                             ('DELETE', None)):
            with self.subTest(method=method):
                mine = self.call(method, '/api/v1/flows/' + theirs['id'],
                                 json=body)
                absent = self.call(method, '/api/v1/flows/' + nowhere,
                                   json=body)
                self.assertProblem(mine, 404)
                self.assertSameProblem(mine, absent)
                with_etag = self.call(method, '/api/v1/flows/' + theirs['id'],
                                      json=body, headers={'If-Match': etag})
                self.assertProblem(with_etag, 404)

        listed = self.assertJson(self.call('GET', '/api/v1/flows?limit=100'),
                                 200)
        self.assertNotIn(theirs['id'], [f['id'] for f in listed['items']])
        resp = self.stack.request('GET', '/api/v1/flows/' + theirs['id'],
                                  host=other.slug, token=other.token)
        self.assertEqual(self.assertJson(resp, 200), theirs)


class RoleTest(FlowTestCase):
    """Viewers read flows; members and admins change them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tokens = {'admin': cls.tenant.token}
        for role in ('member', 'viewer'):
            email = '%s@%s.test' % (role, cls.tenant.slug)
            # The admin's password hash: the same password logs in.
            cls.stack.psql(
                "INSERT INTO public.users (tenant_id, email, password_hash,"
                " role) SELECT tenant_id, :'email', password_hash, :'role' "
                "FROM public.users WHERE tenant_id = :'t' AND role = 'admin'",
                email=email, role=role, t=cls.tenant.id)
            cls.tokens[role] = cls.stack.login(cls.tenant.slug, email=email)

    def test_every_role_reads(self):
        created, _ = self.create()
        for role, token in self.tokens.items():
            with self.subTest(role=role):
                for path in ('/api/v1/flows', '/api/v1/flows?is_active=true',
                             '/api/v1/flows/' + created['id']):
                    self.assertJson(self.call('GET', path, token=token), 200)

    def test_a_viewer_cannot_write(self):
        created, _ = self.create()
        token = self.tokens['viewer']
        before = self.count()
        for method, path, body in (
                ('POST', '/api/v1/flows', flow_body()),
                ('PATCH', '/api/v1/flows/' + created['id'], {'name': 'x'}),
                ('DELETE', '/api/v1/flows/' + created['id'], None)):
            with self.subTest(method=method):
                self.assertProblem(
                    self.call(method, path, token=token, json=body), 403)
        self.assertEqual(self.count(), before)
        self.assertEqual(self.stored(created['id'], 'name'), [('publish',)])

    def test_a_member_writes(self):
        token = self.tokens['member']
        created = self.assertJson(self.call(
            'POST', '/api/v1/flows', token=token,
            json=flow_body(definition=self.graph())), 201)
        self.assertJson(self.call('PATCH', '/api/v1/flows/' + created['id'],
                                  token=token, json={'is_active': False}),
                        200)
        self.assertStatus(self.call('DELETE', '/api/v1/flows/' +
                                    created['id'], token=token), 204)


if __name__ == '__main__':
    crewtest.main()
