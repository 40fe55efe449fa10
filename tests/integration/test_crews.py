"""Crews, their ordered agents, and deleting an agent that is in a crew."""

import datetime
import json
import time

import crewtest
from crewtest import StackTestCase, random_uuid

CREW_KEYS = {'id', 'tenant_id', 'name', 'description', 'process', 'verbose',
             'config', 'created_at', 'updated_at'}


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))


def crew_body(**changes):
    body = {'name': 'research team'}
    body.update(changes)
    return body


class CrewTestCase(StackTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant = cls.stack.new_tenant('crews')
        cls.schema = cls.stack.tenant_schema(cls.tenant.id)

    def call(self, method, path, token=None, **kwargs):
        return self.stack.request(
            method, path, host=self.tenant.slug,
            token=self.tenant.token if token is None else token, **kwargs)

    def create(self, **changes):
        resp = self.call('POST', '/api/v1/crews', json=crew_body(**changes))
        return self.assertJson(resp, 201), resp

    def create_agent(self, name='agent'):
        resp = self.call('POST', '/api/v1/agents', json={
            'name': name, 'role': 'Worker', 'goal': 'Work'})
        return self.assertJson(resp, 201)

    def put_members(self, crew_id, members, **kwargs):
        return self.call('PUT', '/api/v1/crews/%s/agents' % crew_id,
                         json=members, **kwargs)

    def members(self, crew_id):
        """[(agent_id, position)] as the API shows them."""
        body = self.assertJson(
            self.call('GET', '/api/v1/crews/%s/agents' % crew_id), 200)
        return [(m['agent_id'], m['position']) for m in body['items']]

    def stored(self, crew_id, columns='name, process'):
        return self.stack.psql(
            'SELECT %s FROM :"schema".crews WHERE id = :\'id\'' % columns,
            schema=self.schema, id=crew_id)

    def stored_members(self, crew_id):
        return self.stack.psql(
            'SELECT agent_id, position FROM :"schema".crew_agents '
            'WHERE crew_id = :\'id\' ORDER BY position',
            schema=self.schema, id=crew_id)

    def count(self):
        return int(self.stack.psql_value(
            'SELECT count(*) FROM :"schema".crews', schema=self.schema))


class CrewCreateTest(CrewTestCase):

    def test_create_answers_201_with_location_etag_and_defaults(self):
        body, resp = self.create()
        self.assertEqual(set(body), CREW_KEYS)
        self.assertUuid(body['id'])
        self.assertEqual(body['tenant_id'], self.tenant.id)
        self.assertEqual(body['name'], 'research team')
        self.assertIsNone(body['description'])
        self.assertEqual(body['process'], 'sequential')
        self.assertIs(body['verbose'], True)
        self.assertEqual(body['config'], {})
        self.assertTimestamp(body['created_at'])
        self.assertEqual(body['created_at'], body['updated_at'])
        self.assertEqual(resp.headers.get('Location'),
                         '/api/v1/crews/' + body['id'])
        self.assertTrue(resp.headers.get('ETag'), resp.headers)

    def test_create_stores_every_field_in_the_tenants_schema(self):
        body, _ = self.create(name='writers', description='They write',
                              process='hierarchical', verbose=False,
                              config={'max_rpm': 10, 'memory': True})
        rows = self.stored(body['id'], 'tenant_id, name, description, '
                           'process, "verbose", config::text')
        self.assertEqual(rows, [(self.tenant.id, 'writers', 'They write',
                                 'hierarchical', 'f',
                                 '{"memory": true, "max_rpm": 10}')])
        self.assertEqual(body['process'], 'hierarchical')
        self.assertEqual(body['config'], {'max_rpm': 10, 'memory': True})

    def test_create_without_a_name_answers_422(self):
        before = self.count()
        resp = self.call('POST', '/api/v1/crews',
                         json={'process': 'sequential'})
        self.assertProblem(resp, 422, fields=['/name'])
        self.assertEqual(self.count(), before)

    def test_create_with_wrong_types_answers_422_naming_the_field(self):
        cases = [
            ('name', 5), ('name', None), ('name', ''), ('name', 'x' * 256),
            ('name', 'a\tb'), ('description', 7), ('description', []),
            ('process', 'parallel'), ('process', None), ('process', 1),
            ('process', 'Sequential'), ('verbose', 'true'),
            ('verbose', None), ('verbose', 0), ('config', []),
            ('config', 'x'), ('config', None),
        ]
        before = self.count()
        for field, value in cases:
            with self.subTest(field=field, value=value):
                resp = self.call('POST', '/api/v1/crews',
                                 json=crew_body(**{field: value}))
                self.assertProblem(resp, 422, fields=['/' + field])
        self.assertEqual(self.count(), before)

    def test_create_accepts_a_null_description(self):
        body, _ = self.create(description=None)
        self.assertIsNone(body['description'])

    def test_create_with_unknown_fields_answers_422(self):
        for field in ('agents', 'agent_ids', 'members', 'colour'):
            with self.subTest(field=field):
                resp = self.call('POST', '/api/v1/crews',
                                 json=crew_body(**{field: []}))
                self.assertProblem(resp, 422, fields=['/' + field])

    def test_create_with_server_owned_fields_answers_422(self):
        for field, value in (('id', random_uuid()),
                             ('tenant_id', self.tenant.id),
                             ('created_at', '2026-01-01T00:00:00Z'),
                             ('updated_at', '2026-01-01T00:00:00Z')):
            with self.subTest(field=field):
                resp = self.call('POST', '/api/v1/crews',
                                 json=crew_body(**{field: value}))
                self.assertProblem(resp, 422, fields=['/' + field])

    def test_create_reports_every_problem_at_once(self):
        resp = self.call('POST', '/api/v1/crews', json={
            'process': 'parallel', 'verbose': 'yes', 'tenant_id': 'x',
            'colour': 'red'})
        self.assertProblem(resp, 422, fields=[
            '/process', '/verbose', '/tenant_id', '/colour', '/name'])

    def test_create_with_a_body_that_is_not_an_object_answers_422(self):
        resp = self.call('POST', '/api/v1/crews', json=[crew_body()])
        self.assertProblem(resp, 422, fields=[''])

    def test_create_with_malformed_json_answers_400(self):
        resp = self.call('POST', '/api/v1/crews', body='{"name": "x",',
                         headers={'Content-Type': 'application/json'})
        self.assertProblem(resp, 400)

    def test_create_with_another_media_type_answers_415(self):
        resp = self.call('POST', '/api/v1/crews', body='name=x',
                         headers={'Content-Type':
                                  'application/x-www-form-urlencoded'})
        self.assertProblem(resp, 415)


class CrewReadTest(CrewTestCase):

    def test_get_answers_200_with_the_crew_and_its_etag(self):
        created, create_resp = self.create(description='d')
        resp = self.call('GET', '/api/v1/crews/' + created['id'])
        self.assertEqual(self.assertJson(resp, 200), created)
        self.assertEqual(resp.headers.get('ETag'),
                         create_resp.headers.get('ETag'))

    def test_get_of_an_unknown_id_answers_404(self):
        self.assertProblem(
            self.call('GET', '/api/v1/crews/' + random_uuid()), 404)

    def test_get_with_a_query_parameter_answers_400(self):
        created, _ = self.create()
        self.assertProblem(
            self.call('GET', '/api/v1/crews/%s?x=1' % created['id']), 400)


class CrewListTest(CrewTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A tenant of its own, so the list holds exactly these five.
        cls.tenant = cls.stack.new_tenant('crewlist')
        cls.schema = cls.stack.tenant_schema(cls.tenant.id)
        cls.ids = []
        cls.processes = ['sequential', 'hierarchical', 'sequential',
                         'hierarchical', 'sequential']
        for i, process in enumerate(cls.processes):
            resp = cls.stack.request('POST', '/api/v1/crews',
                                     host=cls.tenant.slug,
                                     token=cls.tenant.token,
                                     json=crew_body(name='crew %d' % i,
                                                    process=process))
            if resp.status != 201:
                raise AssertionError(resp)
            cls.ids.append(resp.json()['id'])
            time.sleep(0.002)

    def page(self, query):
        return self.call('GET', '/api/v1/crews' + query)

    def test_list_answers_newest_first(self):
        body = self.assertJson(self.page(''), 200)
        self.assertEqual([c['id'] for c in body['items']],
                         list(reversed(self.ids)))
        self.assertIsNone(body['next_cursor'])
        self.assertEqual(set(body['items'][0]), CREW_KEYS)
        self.assertEqual(body['items'][0]['name'], 'crew 4')

    def test_list_pages_with_limit_and_cursor(self):
        seen, pages, query = [], [], '?limit=2'
        while True:
            body = self.assertJson(self.page(query), 200)
            pages.append(len(body['items']))
            seen += [c['id'] for c in body['items']]
            if body['next_cursor'] is None:
                break
            self.assertLess(len(pages), 10)
            query = '?limit=2&cursor=' + body['next_cursor']
        self.assertEqual(pages, [2, 2, 1])
        self.assertEqual(seen, list(reversed(self.ids)))

    def test_list_filters_by_process(self):
        for process in ('sequential', 'hierarchical'):
            with self.subTest(process=process):
                body = self.assertJson(self.page('?process=' + process),
                                       200)
                expected = [i for i, p in zip(self.ids, self.processes)
                            if p == process]
                self.assertEqual([c['id'] for c in body['items']],
                                 list(reversed(expected)))

    def test_list_pages_through_a_filter(self):
        first = self.assertJson(
            self.page('?process=sequential&limit=2'), 200)
        self.assertEqual(len(first['items']), 2)
        rest = self.assertJson(
            self.page('?process=sequential&limit=2&cursor=' +
                      first['next_cursor']), 200)
        self.assertEqual([c['id'] for c in first['items'] + rest['items']],
                         [self.ids[4], self.ids[2], self.ids[0]])
        self.assertIsNone(rest['next_cursor'])

    def test_list_with_a_bad_filter_value_answers_400_naming_it(self):
        for value in ('parallel', '', 'SEQUENTIAL'):
            with self.subTest(value=value):
                self.assertProblem(self.page('?process=' + value), 400,
                                   fields=['process'])

    def test_list_with_an_unknown_parameter_answers_400(self):
        self.assertProblem(self.page('?is_active=true'), 400)

    def test_list_with_a_bad_limit_answers_400(self):
        self.assertProblem(self.page('?limit=0'), 400, fields=['limit'])


class CrewUpdateTest(CrewTestCase):

    def test_patch_changes_only_the_given_fields(self):
        created, resp = self.create(description='old', config={'k': 1})
        time.sleep(0.01)
        patched = self.call('PATCH', '/api/v1/crews/' + created['id'],
                            json={'process': 'hierarchical'})
        body = self.assertJson(patched, 200)
        self.assertEqual(body, dict(created, process='hierarchical',
                                    updated_at=body['updated_at']))
        self.assertGreater(parse_time(body['updated_at']),
                           parse_time(created['updated_at']))
        self.assertNotEqual(patched.headers.get('ETag'),
                            resp.headers.get('ETag'))
        self.assertEqual(self.stored(created['id'],
                                     'process, description'),
                         [('hierarchical', 'old')])

    def test_patch_can_set_the_description_to_null(self):
        created, _ = self.create(description='to be removed')
        body = self.assertJson(
            self.call('PATCH', '/api/v1/crews/' + created['id'],
                      json={'description': None}), 200)
        self.assertIsNone(body['description'])

    def test_patch_with_a_stale_if_match_answers_412(self):
        created, resp = self.create()
        self.assertJson(self.call('PATCH', '/api/v1/crews/' + created['id'],
                                  json={'name': 'second'}), 200)
        stale = self.call('PATCH', '/api/v1/crews/' + created['id'],
                          json={'name': 'third'},
                          headers={'If-Match': resp.headers['ETag']})
        self.assertProblem(stale, 412)
        self.assertEqual(self.stored(created['id'], 'name'), [('second',)])

    def test_patch_with_the_current_if_match_answers_200(self):
        created, resp = self.create()
        patched = self.call('PATCH', '/api/v1/crews/' + created['id'],
                            json={'name': 'matched'},
                            headers={'If-Match': resp.headers['ETag']})
        self.assertEqual(self.assertJson(patched, 200)['name'], 'matched')

    def test_patch_with_invalid_fields_answers_422_and_changes_nothing(self):
        created, _ = self.create()
        for patch, field in (({'name': None}, '/name'),
                             ({'process': 'parallel'}, '/process'),
                             ({'verbose': 'no'}, '/verbose'),
                             ({'config': [1]}, '/config'),
                             ({'id': random_uuid()}, '/id'),
                             ({'tenant_id': random_uuid()}, '/tenant_id'),
                             ({'agents': []}, '/agents')):
            with self.subTest(patch=patch):
                resp = self.call('PATCH', '/api/v1/crews/' + created['id'],
                                 json=patch)
                self.assertProblem(resp, 422, fields=[field])
        got = self.assertJson(
            self.call('GET', '/api/v1/crews/' + created['id']), 200)
        self.assertEqual(got, created)

    def test_patch_of_an_unknown_id_answers_404(self):
        resp = self.call('PATCH', '/api/v1/crews/' + random_uuid(),
                         json={'name': 'x'})
        self.assertProblem(resp, 404)


class CrewDeleteTest(CrewTestCase):

    def test_delete_answers_204_and_the_crew_is_gone(self):
        created, _ = self.create()
        resp = self.call('DELETE', '/api/v1/crews/' + created['id'])
        self.assertStatus(resp, 204)
        self.assertEqual(resp.body, b'')
        self.assertProblem(
            self.call('GET', '/api/v1/crews/' + created['id']), 404)
        self.assertEqual(self.stored(created['id']), [])

    def test_delete_takes_the_membership_but_not_the_agents(self):
        created, _ = self.create()
        agent = self.create_agent()
        self.assertJson(self.put_members(created['id'], [
            {'agent_id': agent['id'], 'position': 0}]), 200)
        self.assertStatus(
            self.call('DELETE', '/api/v1/crews/' + created['id']), 204)
        self.assertEqual(self.stored_members(created['id']), [])
        self.assertJson(
            self.call('GET', '/api/v1/agents/' + agent['id']), 200)

    def test_delete_with_a_stale_if_match_answers_412(self):
        created, resp = self.create()
        self.assertJson(self.call('PATCH', '/api/v1/crews/' + created['id'],
                                  json={'name': 'changed'}), 200)
        stale = self.call('DELETE', '/api/v1/crews/' + created['id'],
                          headers={'If-Match': resp.headers['ETag']})
        self.assertProblem(stale, 412)
        self.assertEqual(len(self.stored(created['id'])), 1)

    def test_delete_with_the_current_if_match_answers_204(self):
        created, resp = self.create()
        self.assertStatus(
            self.call('DELETE', '/api/v1/crews/' + created['id'],
                      headers={'If-Match': resp.headers['ETag']}), 204)

    def test_delete_twice_answers_404(self):
        created, _ = self.create()
        self.assertStatus(
            self.call('DELETE', '/api/v1/crews/' + created['id']), 204)
        self.assertProblem(
            self.call('DELETE', '/api/v1/crews/' + created['id']), 404)

    def test_delete_with_a_query_parameter_answers_400(self):
        created, _ = self.create()
        self.assertProblem(
            self.call('DELETE', '/api/v1/crews/%s?force=true' %
                      created['id']), 400)
        self.assertEqual(len(self.stored(created['id'])), 1)


class MembershipTest(CrewTestCase):

    def setUp(self):
        self.crew, resp = self.create()
        self.etag = resp.headers['ETag']
        self.agents = [self.create_agent('agent %d' % i) for i in range(3)]
        self.a, self.b, self.c = (x['id'] for x in self.agents)

    def test_a_new_crew_has_no_agents_and_carries_the_crews_etag(self):
        resp = self.call('GET', '/api/v1/crews/%s/agents' % self.crew['id'])
        self.assertEqual(self.assertJson(resp, 200),
                         {'items': [], 'next_cursor': None})
        self.assertEqual(resp.headers.get('ETag'), self.etag)

    def test_put_answers_the_agents_in_position_order(self):
        resp = self.put_members(self.crew['id'], [
            {'agent_id': self.a, 'position': 1},
            {'agent_id': self.c, 'position': 0},
            {'position': 2, 'agent_id': self.b}])
        body = self.assertJson(resp, 200)
        self.assertEqual([(m['agent_id'], m['position'])
                          for m in body['items']],
                         [(self.c, 0), (self.a, 1), (self.b, 2)])
        self.assertIsNone(body['next_cursor'])
        for member in body['items']:
            self.assertEqual(set(member), {'agent_id', 'position', 'agent'})
            agent = self.assertJson(
                self.call('GET', '/api/v1/agents/' + member['agent_id']),
                200)
            self.assertEqual(member['agent'], agent)

    def test_membership_order_round_trips(self):
        order = [(self.b, 0), (self.c, 1), (self.a, 2)]
        put = self.assertJson(self.put_members(self.crew['id'], [
            {'agent_id': a, 'position': p} for a, p in order]), 200)
        self.assertEqual(self.members(self.crew['id']), order)
        got = self.assertJson(
            self.call('GET', '/api/v1/crews/%s/agents' % self.crew['id']),
            200)
        self.assertEqual(got, put)
        self.assertEqual(self.stored_members(self.crew['id']),
                         [(a, str(p)) for a, p in order])

    def test_the_agents_upper_case_ids_are_stored_canonical(self):
        self.assertJson(self.put_members(self.crew['id'], [
            {'agent_id': self.a.upper(), 'position': 0}]), 200)
        self.assertEqual(self.members(self.crew['id']), [(self.a, 0)])

    def test_put_replaces_the_whole_membership(self):
        self.assertJson(self.put_members(self.crew['id'], [
            {'agent_id': self.a, 'position': 0},
            {'agent_id': self.b, 'position': 1}]), 200)
        self.assertJson(self.put_members(self.crew['id'], [
            {'agent_id': self.c, 'position': 0},
            {'agent_id': self.a, 'position': 1}]), 200)
        self.assertEqual(self.members(self.crew['id']),
                         [(self.c, 0), (self.a, 1)])
        self.assertEqual(self.stored_members(self.crew['id']),
                         [(self.c, '0'), (self.a, '1')])

    def test_put_can_swap_two_positions(self):
        self.assertJson(self.put_members(self.crew['id'], [
            {'agent_id': self.a, 'position': 0},
            {'agent_id': self.b, 'position': 1}]), 200)
        self.assertJson(self.put_members(self.crew['id'], [
            {'agent_id': self.a, 'position': 1},
            {'agent_id': self.b, 'position': 0}]), 200)
        self.assertEqual(self.members(self.crew['id']),
                         [(self.b, 0), (self.a, 1)])

    def test_an_empty_array_empties_the_crew(self):
        self.assertJson(self.put_members(self.crew['id'], [
            {'agent_id': self.a, 'position': 0}]), 200)
        body = self.assertJson(self.put_members(self.crew['id'], []), 200)
        self.assertEqual(body, {'items': [], 'next_cursor': None})
        self.assertEqual(self.stored_members(self.crew['id']), [])
        self.assertJson(self.call('GET', '/api/v1/agents/' + self.a), 200)

    def test_an_agent_may_be_in_several_crews(self):
        other, _ = self.create(name='other crew')
        for crew in (self.crew['id'], other['id']):
            self.assertJson(self.put_members(crew, [
                {'agent_id': self.a, 'position': 0}]), 200)
        self.assertEqual(self.members(self.crew['id']), [(self.a, 0)])
        self.assertEqual(self.members(other['id']), [(self.a, 0)])

    def test_put_moves_the_crews_etag_and_updated_at(self):
        time.sleep(0.01)
        resp = self.put_members(self.crew['id'], [
            {'agent_id': self.a, 'position': 0}])
        self.assertJson(resp, 200)
        new_etag = resp.headers.get('ETag')
        self.assertTrue(new_etag)
        self.assertNotEqual(new_etag, self.etag)

        crew_resp = self.call('GET', '/api/v1/crews/' + self.crew['id'])
        crew = self.assertJson(crew_resp, 200)
        self.assertEqual(crew_resp.headers.get('ETag'), new_etag)
        self.assertGreater(parse_time(crew['updated_at']),
                           parse_time(self.crew['updated_at']))
        members_resp = self.call('GET',
                                 '/api/v1/crews/%s/agents' % self.crew['id'])
        self.assertEqual(members_resp.headers.get('ETag'), new_etag)

    def test_put_with_a_stale_if_match_answers_412_and_changes_nothing(self):
        self.assertJson(self.put_members(self.crew['id'], [
            {'agent_id': self.a, 'position': 0}]), 200)
        stale = self.put_members(self.crew['id'], [
            {'agent_id': self.b, 'position': 0}],
            headers={'If-Match': self.etag})
        self.assertProblem(stale, 412)
        self.assertEqual(self.members(self.crew['id']), [(self.a, 0)])

    def test_put_after_a_crew_patch_with_the_old_etag_answers_412(self):
        self.assertJson(self.call('PATCH', '/api/v1/crews/' + self.crew['id'],
                                  json={'name': 'renamed'}), 200)
        stale = self.put_members(self.crew['id'], [
            {'agent_id': self.a, 'position': 0}],
            headers={'If-Match': self.etag})
        self.assertProblem(stale, 412)
        self.assertEqual(self.stored_members(self.crew['id']), [])

    def test_put_with_the_etag_of_the_agents_list_answers_200(self):
        listed = self.call('GET', '/api/v1/crews/%s/agents' % self.crew['id'])
        resp = self.put_members(self.crew['id'], [
            {'agent_id': self.a, 'position': 0}],
            headers={'If-Match': listed.headers['ETag']})
        self.assertJson(resp, 200)
        # The crew's ETag of before the PUT no longer matches.
        again = self.put_members(self.crew['id'], [],
                                 headers={'If-Match': listed.headers['ETag']})
        self.assertProblem(again, 412)

    def test_crew_patch_with_the_etag_before_a_put_answers_412(self):
        self.assertJson(self.put_members(self.crew['id'], [
            {'agent_id': self.a, 'position': 0}]), 200)
        stale = self.call('PATCH', '/api/v1/crews/' + self.crew['id'],
                          json={'name': 'x'}, headers={'If-Match': self.etag})
        self.assertProblem(stale, 412)

    def test_put_of_an_unknown_crew_answers_404(self):
        for method in ('GET', 'PUT'):
            with self.subTest(method=method):
                resp = self.call(method,
                                 '/api/v1/crews/%s/agents' % random_uuid(),
                                 json=[] if method == 'PUT' else None)
                self.assertProblem(resp, 404)


class MembershipValidationTest(CrewTestCase):

    def setUp(self):
        self.crew, _ = self.create()
        self.a = self.create_agent('a')['id']
        self.b = self.create_agent('b')['id']
        self.c = self.create_agent('c')['id']
        # What every refused PUT must leave as it is.
        self.assertJson(self.put_members(self.crew['id'], [
            {'agent_id': self.c, 'position': 0}]), 200)

    def refused(self, members, fields, status=422):
        resp = self.put_members(self.crew['id'], members)
        body = self.assertProblem(resp, status, fields=fields)
        self.assertEqual(self.stored_members(self.crew['id']),
                         [(self.c, '0')])
        return {e['field']: e['message'] for e in body['errors']}

    def test_duplicate_positions_answer_422(self):
        errors = self.refused([{'agent_id': self.a, 'position': 0},
                               {'agent_id': self.b, 'position': 0}],
                              ['/1/position'])
        self.assertEqual(errors['/1/position'],
                         'duplicate position: also the position of /0')

    def test_a_gap_in_positions_answers_422(self):
        errors = self.refused([{'agent_id': self.a, 'position': 0},
                               {'agent_id': self.b, 'position': 2}],
                              ['/1/position'])
        self.assertIn('from 0 to 1', errors['/1/position'])

    def test_positions_counting_from_1_answer_422(self):
        self.refused([{'agent_id': self.a, 'position': 1},
                      {'agent_id': self.b, 'position': 2}],
                     ['/1/position'])

    def test_positions_that_are_not_non_negative_integers_answer_422(self):
        for value in (-1, 1.5, 0.0, '0', None, True, [0], 2 ** 63):
            with self.subTest(position=value):
                self.refused([{'agent_id': self.a, 'position': value},
                              {'agent_id': self.b, 'position': 1}],
                             ['/0/position'])

    def test_duplicate_agents_answer_422(self):
        errors = self.refused([{'agent_id': self.a, 'position': 0},
                               {'agent_id': self.a.upper(), 'position': 1}],
                              ['/1/agent_id'])
        self.assertEqual(errors['/1/agent_id'],
                         'duplicate agent: also the agent of /0')

    def test_agent_ids_that_are_not_uuids_answer_422(self):
        for value in ('not-a-uuid', 7, None, '', {'id': self.a}):
            with self.subTest(agent_id=value):
                self.refused([{'agent_id': value, 'position': 0}],
                             ['/0/agent_id'])

    def test_unknown_agents_answer_422_no_such_agent(self):
        errors = self.refused([{'agent_id': self.a, 'position': 0},
                               {'agent_id': random_uuid(), 'position': 1},
                               {'agent_id': random_uuid(), 'position': 2}],
                              ['/1/agent_id', '/2/agent_id'])
        self.assertEqual(errors['/1/agent_id'], 'no such agent')

    def test_another_tenants_agents_answer_422_no_such_agent(self):
        other = self.stack.new_tenant('other')
        resp = self.stack.request('POST', '/api/v1/agents', host=other.slug,
                                  token=other.token,
                                  json={'name': 'n', 'role': 'r',
                                        'goal': 'g'})
        foreign = self.assertJson(resp, 201)['id']
        errors = self.refused([{'agent_id': foreign, 'position': 0}],
                              ['/0/agent_id'])
        self.assertEqual(errors['/0/agent_id'], 'no such agent')

    def test_missing_and_unknown_members_answer_422(self):
        errors = self.refused([{'agent_id': self.a},
                               {'position': 1},
                               {'agent_id': self.b, 'position': 2,
                                'crew_id': self.crew['id'], 'a/b': 1}],
                              ['/0/position', '/1/agent_id',
                               '/2/crew_id', '/2/a~1b'])
        self.assertEqual(errors['/0/position'], 'is required')
        self.assertEqual(errors['/2/crew_id'], 'is not a known field')

    def test_elements_that_are_not_objects_answer_422(self):
        self.refused([self.a, [self.b, 1], None],
                     ['/0', '/1', '/2'])

    def test_every_problem_is_reported_at_once(self):
        errors = self.refused([
            {'agent_id': self.a, 'position': 0},
            {'agent_id': self.a, 'position': 0},
            {'agent_id': random_uuid(), 'position': -3},
            {'agent_id': 'x', 'position': 'y', 'z': 1},
            7,
        ], ['/1/agent_id', '/1/position', '/2/agent_id', '/2/position',
            '/3/agent_id', '/3/position', '/3/z', '/4'])
        self.assertEqual(errors['/2/agent_id'], 'no such agent')

    def test_a_body_that_is_not_an_array_answers_422(self):
        for body in ({'agent_id': self.a, 'position': 0}, 'x', 1, None):
            with self.subTest(body=body):
                resp = self.call('PUT',
                                 '/api/v1/crews/%s/agents' % self.crew['id'],
                                 body=json.dumps(body),
                                 headers={'Content-Type':
                                          'application/json'})
                self.assertProblem(resp, 422, fields=[''])

    def test_malformed_json_answers_400_and_no_body_400(self):
        for body in ('[{"agent_id": 1,', ''):
            with self.subTest(body=body):
                resp = self.call('PUT',
                                 '/api/v1/crews/%s/agents' % self.crew['id'],
                                 body=body,
                                 headers={'Content-Type':
                                          'application/json'})
                self.assertProblem(resp, 400)
        self.assertEqual(self.stored_members(self.crew['id']),
                         [(self.c, '0')])

    def test_more_than_1000_agents_answer_422(self):
        members = [{'agent_id': random_uuid(), 'position': i}
                   for i in range(1001)]
        errors = self.refused(members, [''])
        self.assertIn('at most 1000', errors[''])

    def test_a_query_parameter_answers_400(self):
        resp = self.call('PUT', '/api/v1/crews/%s/agents?x=1' %
                         self.crew['id'], json=[])
        self.assertProblem(resp, 400)


class AgentInCrewDeleteTest(CrewTestCase):

    def setUp(self):
        self.crew, _ = self.create()
        self.agents = [self.create_agent('member %d' % i)['id']
                       for i in range(3)]
        resp = self.put_members(self.crew['id'], [
            {'agent_id': a, 'position': i}
            for i, a in enumerate(self.agents)])
        self.assertJson(resp, 200)
        self.etag = resp.headers['ETag']

    def stored_agent(self, agent_id):
        return self.stack.psql(
            'SELECT id FROM :"schema".agents WHERE id = :\'id\'',
            schema=self.schema, id=agent_id)

    def test_deleting_an_agent_in_a_crew_answers_409(self):
        resp = self.call('DELETE', '/api/v1/agents/' + self.agents[1])
        body = self.assertProblem(resp, 409)
        self.assertIn('force=true', body['detail'])
        self.assertEqual(len(self.stored_agent(self.agents[1])), 1)
        self.assertEqual(self.members(self.crew['id']),
                         [(a, i) for i, a in enumerate(self.agents)])

    def test_force_false_is_the_same_as_no_force(self):
        resp = self.call('DELETE',
                         '/api/v1/agents/%s?force=false' % self.agents[0])
        self.assertProblem(resp, 409)
        self.assertEqual(len(self.stored_agent(self.agents[0])), 1)

    def test_force_deletes_the_agent_and_closes_the_gap(self):
        resp = self.call('DELETE',
                         '/api/v1/agents/%s?force=true' % self.agents[1])
        self.assertStatus(resp, 204)
        self.assertEqual(self.stored_agent(self.agents[1]), [])
        self.assertEqual(self.members(self.crew['id']),
                         [(self.agents[0], 0), (self.agents[2], 1)])
        self.assertEqual(self.stored_members(self.crew['id']),
                         [(self.agents[0], '0'), (self.agents[2], '1')])

    def test_force_moves_the_etag_of_every_crew_of_the_agent(self):
        other, _ = self.create(name='other')
        resp = self.put_members(other['id'], [
            {'agent_id': self.agents[0], 'position': 0}])
        other_etag = resp.headers['ETag']
        self.assertStatus(self.call(
            'DELETE', '/api/v1/agents/%s?force=true' % self.agents[0]), 204)

        for crew_id, old in ((self.crew['id'], self.etag),
                             (other['id'], other_etag)):
            resp = self.call('GET', '/api/v1/crews/' + crew_id)
            self.assertJson(resp, 200)
            self.assertNotEqual(resp.headers.get('ETag'), old)
        self.assertEqual(self.members(other['id']), [])
        self.assertEqual(self.members(self.crew['id']),
                         [(self.agents[1], 0), (self.agents[2], 1)])

    def test_an_agent_in_no_crew_deletes_without_force(self):
        loner = self.create_agent('loner')['id']
        self.assertStatus(self.call('DELETE', '/api/v1/agents/' + loner),
                          204)
        self.assertEqual(self.stored_agent(loner), [])

    def test_a_bad_force_value_answers_400_naming_it(self):
        for value in ('yes', '1', '', 'TRUE'):
            with self.subTest(force=value):
                resp = self.call('DELETE', '/api/v1/agents/%s?force=%s' %
                                 (self.agents[0], value))
                self.assertProblem(resp, 400, fields=['force'])
        self.assertEqual(len(self.stored_agent(self.agents[0])), 1)

    def test_other_query_parameters_still_answer_400(self):
        resp = self.call('DELETE', '/api/v1/agents/%s?force=true&x=1' %
                         self.agents[0])
        self.assertProblem(resp, 400)
        self.assertEqual(len(self.stored_agent(self.agents[0])), 1)

    def test_forced_delete_with_a_stale_if_match_answers_412(self):
        agent_id = self.agents[2]
        resp = self.call('GET', '/api/v1/agents/' + agent_id)
        etag = resp.headers['ETag']
        self.assertJson(self.call('PATCH', '/api/v1/agents/' + agent_id,
                                  json={'goal': 'changed'}), 200)
        resp = self.call('DELETE', '/api/v1/agents/%s?force=true' % agent_id,
                         headers={'If-Match': etag})
        self.assertProblem(resp, 412)
        self.assertEqual(len(self.members(self.crew['id'])), 3)

    def test_force_on_an_unknown_agent_answers_404(self):
        resp = self.call('DELETE',
                         '/api/v1/agents/%s?force=true' % random_uuid())
        self.assertProblem(resp, 404)


class OtherTenantTest(CrewTestCase):
    """Another tenant's crew answers exactly as a crew that exists
    nowhere, for every verb."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other = cls.stack.new_tenant('othercrews')

    def setUp(self):
        resp = self.stack.request('POST', '/api/v1/crews',
                                  host=self.other.slug,
                                  token=self.other.token,
                                  json=crew_body(name='theirs'))
        self.theirs = self.assertJson(resp, 201)
        self.their_etag = resp.headers['ETag']
        resp = self.stack.request('POST', '/api/v1/agents',
                                  host=self.other.slug,
                                  token=self.other.token,
                                  json={'name': 'n', 'role': 'r',
                                        'goal': 'g'})
        self.their_agent = self.assertJson(resp, 201)['id']
        self.mine = self.create_agent('mine')['id']

    def test_every_verb_on_another_tenants_crew_answers_404(self):
        nowhere = random_uuid()
        cases = [
            ('GET', '/api/v1/crews/%s', None),
            ('PATCH', '/api/v1/crews/%s', {'name': 'stolen'}),
            ('DELETE', '/api/v1/crews/%s', None),
            ('GET', '/api/v1/crews/%s/agents', None),
            ('PUT', '/api/v1/crews/%s/agents',
             [{'agent_id': self.mine, 'position': 0}]),
            ('PUT', '/api/v1/crews/%s/agents', []),
        ]
        for method, path, body in cases:
            with self.subTest(method=method, path=path):
                theirs = self.call(method, path % self.theirs['id'],
                                   json=body)
                absent = self.call(method, path % nowhere, json=body)
                self.assertProblem(theirs, 404)
                self.assertSameProblem(theirs, absent)

        resp = self.stack.request('GET', '/api/v1/crews/' + self.theirs['id'],
                                  host=self.other.slug,
                                  token=self.other.token)
        self.assertEqual(self.assertJson(resp, 200), self.theirs)
        self.assertEqual(resp.headers['ETag'], self.their_etag)

    def test_if_match_with_their_etag_still_answers_404(self):
        resp = self.put_members(self.theirs['id'], [],
                                headers={'If-Match': self.their_etag})
        self.assertProblem(resp, 404)

    def test_their_crews_are_not_in_my_list(self):
        body = self.assertJson(self.call('GET', '/api/v1/crews?limit=100'),
                               200)
        self.assertNotIn(self.theirs['id'], [c['id'] for c in body['items']])

    def test_their_agent_in_my_crew_answers_422(self):
        crew, _ = self.create()
        resp = self.put_members(crew['id'], [
            {'agent_id': self.mine, 'position': 0},
            {'agent_id': self.their_agent, 'position': 1}])
        body = self.assertProblem(resp, 422, fields=['/1/agent_id'])
        self.assertEqual(body['errors'][0]['message'], 'no such agent')

    def test_deleting_their_agent_answers_404_forced_or_not(self):
        for query in ('', '?force=true'):
            with self.subTest(query=query):
                theirs = self.call('DELETE', '/api/v1/agents/%s%s' %
                                   (self.their_agent, query))
                absent = self.call('DELETE', '/api/v1/agents/%s%s' %
                                   (random_uuid(), query))
                self.assertProblem(theirs, 404)
                self.assertSameProblem(theirs, absent)


class RoleTest(CrewTestCase):
    """Viewers read crews; members and admins change them."""

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
        crew, _ = self.create()
        for role, token in self.tokens.items():
            with self.subTest(role=role):
                for path in ('/api/v1/crews', '/api/v1/crews/' + crew['id'],
                             '/api/v1/crews/%s/agents' % crew['id']):
                    self.assertJson(self.call('GET', path, token=token), 200)

    def test_a_viewer_cannot_write(self):
        crew, _ = self.create()
        agent = self.create_agent()
        token = self.tokens['viewer']
        cases = [
            ('POST', '/api/v1/crews', crew_body()),
            ('PATCH', '/api/v1/crews/' + crew['id'], {'name': 'x'}),
            ('DELETE', '/api/v1/crews/' + crew['id'], None),
            ('PUT', '/api/v1/crews/%s/agents' % crew['id'],
             [{'agent_id': agent['id'], 'position': 0}]),
            ('DELETE', '/api/v1/agents/%s?force=true' % agent['id'], None),
        ]
        before = self.count()
        for method, path, body in cases:
            with self.subTest(method=method, path=path):
                self.assertProblem(
                    self.call(method, path, token=token, json=body), 403)
        self.assertEqual(self.count(), before)
        self.assertEqual(self.stored_members(crew['id']), [])

    def test_a_member_writes(self):
        token = self.tokens['member']
        resp = self.call('POST', '/api/v1/crews', token=token,
                         json=crew_body())
        crew = self.assertJson(resp, 201)
        agent = self.create_agent()
        self.assertJson(self.call('PATCH', '/api/v1/crews/' + crew['id'],
                                  token=token, json={'name': 'y'}), 200)
        self.assertJson(self.call(
            'PUT', '/api/v1/crews/%s/agents' % crew['id'], token=token,
            json=[{'agent_id': agent['id'], 'position': 0}]), 200)
        self.assertProblem(self.call('DELETE', '/api/v1/agents/' +
                                     agent['id'], token=token), 409)
        self.assertStatus(self.call('DELETE', '/api/v1/agents/%s?force=true'
                                    % agent['id'], token=token), 204)
        self.assertStatus(self.call('DELETE', '/api/v1/crews/' + crew['id'],
                                    token=token), 204)

    def test_no_token_answers_401(self):
        resp = self.stack.request('GET', '/api/v1/crews',
                                  host=self.tenant.slug)
        self.assertProblem(resp, 401)


if __name__ == '__main__':
    crewtest.main()
