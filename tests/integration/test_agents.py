"""Logging in, tokens, and the agents resource of one tenant."""

import base64
import datetime
import json
import time

import crewtest
from crewtest import StackTestCase, random_uuid

AGENT_KEYS = {'id', 'name', 'role', 'goal', 'backstory', 'llm_provider_id',
              'allow_delegation', 'verbose', 'config', 'created_at',
              'updated_at'}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))


def agent_body(**changes):
    body = {'name': 'researcher', 'role': 'Senior researcher',
            'goal': 'Find the facts'}
    body.update(changes)
    return body


class AgentTestCase(StackTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant = cls.stack.new_tenant('agents')
        cls.schema = cls.stack.tenant_schema(cls.tenant.id)

    def call(self, method, path, token=None, **kwargs):
        return self.stack.request(
            method, path, host=self.tenant.slug,
            token=self.tenant.token if token is None else token, **kwargs)

    def create(self, **changes):
        resp = self.call('POST', '/api/v1/agents', json=agent_body(**changes))
        return self.assertJson(resp, 201), resp

    def stored(self, agent_id, columns='name, role, goal'):
        return self.stack.psql(
            'SELECT %s FROM :"schema".agents WHERE id = :\'id\'' % columns,
            schema=self.schema, id=agent_id)


class LoginTest(AgentTestCase):

    def login(self, email, password):
        return self.stack.request('POST', '/api/v1/auth/login',
                                  host=self.tenant.slug,
                                  json={'email': email, 'password': password})

    def test_login_answers_200_with_a_bearer_token(self):
        resp = self.login(self.tenant.email, self.tenant.password)
        body = self.assertJson(resp, 200)
        self.assertEqual(set(body), {'access_token', 'token_type',
                                     'expires_in'})
        self.assertEqual(body['token_type'], 'Bearer')
        self.assertEqual(body['expires_in'], 3600)
        self.assertIsInstance(body['access_token'], str)
        self.assertEqual(len(body['access_token'].split('.')), 3)

    def test_token_names_the_tenant_user_and_role(self):
        body = self.assertJson(
            self.login(self.tenant.email, self.tenant.password), 200)
        header, claims, _ = body['access_token'].split('.')
        self.assertEqual(json.loads(b64url_decode(header))['alg'], 'HS256')
        claims = json.loads(b64url_decode(claims))
        self.assertEqual(claims['aud'], self.tenant.id)
        self.assertEqual(claims['role'], 'admin')
        self.assertEqual(claims['exp'] - claims['iat'], 3600)
        user_id = self.stack.psql_value(
            "SELECT id FROM public.users WHERE tenant_id = :'t'",
            t=self.tenant.id)
        self.assertEqual(claims['sub'], user_id)

    def test_wrong_password_and_unknown_email_answer_the_same_401(self):
        wrong_password = self.login(self.tenant.email, 'not the password')
        unknown_email = self.login('nobody@nowhere.test', 'not the password')
        self.assertProblem(wrong_password, 401)
        self.assertProblem(unknown_email, 401)
        self.assertSameProblem(wrong_password, unknown_email)

    def test_email_of_another_tenant_answers_401(self):
        other = self.stack.new_tenant('other')
        resp = self.login(other.email, other.password)
        self.assertProblem(resp, 401)

    def test_users_me_answers_the_calling_user(self):
        resp = self.call('GET', '/api/v1/users/me')
        body = self.assertJson(resp, 200)
        self.assertUuid(body['id'])
        self.assertEqual(body['email'], self.tenant.email)
        self.assertEqual(body['role'], 'admin')
        self.assertNotIn('password_hash', body)
        self.assertNotIn('password', body)


class TokenTest(AgentTestCase):

    def test_missing_token_answers_401(self):
        resp = self.stack.request('GET', '/api/v1/agents',
                                  host=self.tenant.slug)
        self.assertProblem(resp, 401)

    def test_malformed_tokens_answer_401(self):
        for value in ('Bearer', 'Bearer ', 'Bearer not-a-token',
                      'Bearer a.b.c', 'Bearer ...',
                      'Basic ' + b64url(b'admin:password'),
                      self.tenant.token,
                      'Bearer ' + self.tenant.token + 'x',
                      'Bearer ' + self.tenant.token[:-4]):
            with self.subTest(authorization=value[:40]):
                resp = self.stack.request(
                    'GET', '/api/v1/agents', host=self.tenant.slug,
                    headers={'Authorization': value})
                self.assertProblem(resp, 401)

    def test_token_with_algorithm_none_answers_401(self):
        _, claims, _ = self.tenant.token.split('.')
        for alg in ('none', 'None', 'HS512'):
            with self.subTest(alg=alg):
                header = b64url(json.dumps({'alg': alg,
                                            'typ': 'JWT'}).encode())
                for token in (header + '.' + claims + '.',
                              header + '.' + claims + '.' +
                              self.tenant.token.split('.')[2]):
                    resp = self.call('GET', '/api/v1/agents', token=token)
                    self.assertProblem(resp, 401)

    def test_token_with_changed_claims_answers_401(self):
        header, claims, signature = self.tenant.token.split('.')
        payload = json.loads(b64url_decode(claims))
        payload['role'] = 'admin'
        payload['exp'] = payload['exp'] + 86400
        token = header + '.' + b64url(json.dumps(payload).encode()) + '.' + \
            signature
        resp = self.call('GET', '/api/v1/agents', token=token)
        self.assertProblem(resp, 401)


class AgentCreateTest(AgentTestCase):

    def test_create_answers_201_with_location_etag_and_defaults(self):
        body, resp = self.create(name='analyst', role='Analyst',
                                 goal='Read the numbers')
        self.assertTrue(AGENT_KEYS <= set(body), body)
        self.assertUuid(body['id'])
        self.assertEqual(body['name'], 'analyst')
        self.assertEqual(body['role'], 'Analyst')
        self.assertEqual(body['goal'], 'Read the numbers')
        self.assertIsNone(body['backstory'])
        self.assertIsNone(body['llm_provider_id'])
        self.assertIs(body['allow_delegation'], False)
        self.assertIs(body['verbose'], True)
        self.assertEqual(body['config'], {})
        self.assertTimestamp(body['created_at'])
        self.assertEqual(body['created_at'], body['updated_at'])
        if 'tenant_id' in body:
            self.assertEqual(body['tenant_id'], self.tenant.id)
        self.assertEqual(resp.headers.get('Location'),
                         '/api/v1/agents/' + body['id'])
        self.assertTrue(resp.headers.get('ETag'), resp.headers)

    def test_create_stores_the_agent_in_the_tenants_schema(self):
        body, _ = self.create(backstory='Twenty years in the field',
                              allow_delegation=True, verbose=False,
                              config={'temperature': 0.2, 'tags': ['a']})
        rows = self.stored(body['id'], 'tenant_id, name, backstory, '
                           'allow_delegation, "verbose", config::text')
        self.assertEqual(rows, [(self.tenant.id, 'researcher',
                                 'Twenty years in the field', 't', 'f',
                                 '{"tags": ["a"], "temperature": 0.2}')])
        self.assertEqual(body['config'], {'temperature': 0.2, 'tags': ['a']})

    def test_create_without_required_fields_answers_422_naming_each(self):
        resp = self.call('POST', '/api/v1/agents', json={})
        self.assertProblem(resp, 422, fields=['/goal', '/name', '/role'])

        resp = self.call('POST', '/api/v1/agents',
                         json={'name': 'x', 'backstory': 'y'})
        self.assertProblem(resp, 422, fields=['/goal', '/role'])

    def test_create_with_wrong_types_answers_422(self):
        cases = [
            ('name', 5), ('name', None), ('name', ''), ('name', ['x']),
            ('role', True), ('goal', {'a': 1}),
            ('backstory', 7), ('allow_delegation', 'yes'),
            ('allow_delegation', 1), ('verbose', 'true'), ('verbose', None),
            ('config', []), ('config', 'x'), ('config', None),
            ('llm_provider_id', 'not-a-uuid'), ('llm_provider_id', 12),
        ]
        before = self.count()
        for field, value in cases:
            with self.subTest(field=field, value=value):
                resp = self.call('POST', '/api/v1/agents',
                                 json=agent_body(**{field: value}))
                self.assertProblem(resp, 422, fields=['/' + field])
        self.assertEqual(self.count(), before)

    def test_create_with_an_unknown_field_answers_422(self):
        resp = self.call('POST', '/api/v1/agents',
                         json=agent_body(temperature=0.5))
        self.assertProblem(resp, 422, fields=['/temperature'])

    def test_create_with_server_owned_fields_answers_422(self):
        for field, value in (('id', random_uuid()),
                             ('tenant_id', self.tenant.id),
                             ('created_at', '2026-01-01T00:00:00Z'),
                             ('updated_at', '2026-01-01T00:00:00Z')):
            with self.subTest(field=field):
                resp = self.call('POST', '/api/v1/agents',
                                 json=agent_body(**{field: value}))
                self.assertProblem(resp, 422, fields=['/' + field])

    def test_create_with_unknown_llm_provider_answers_422(self):
        before = self.count()
        resp = self.call('POST', '/api/v1/agents',
                         json=agent_body(llm_provider_id=random_uuid()))
        self.assertProblem(resp, 422, fields=['/llm_provider_id'])
        self.assertEqual(self.count(), before)

    def test_create_with_malformed_json_answers_400(self):
        resp = self.call('POST', '/api/v1/agents', body='{"name": "x",',
                         headers={'Content-Type': 'application/json'})
        self.assertProblem(resp, 400)

    def count(self):
        return self.stack.psql_value(
            'SELECT count(*) FROM :"schema".agents', schema=self.schema)


class AgentReadTest(AgentTestCase):

    def test_get_answers_200_with_the_agent_and_its_etag(self):
        created, create_resp = self.create(backstory='b')
        resp = self.call('GET', '/api/v1/agents/' + created['id'])
        self.assertEqual(self.assertJson(resp, 200), created)
        self.assertEqual(resp.headers.get('ETag'),
                         create_resp.headers.get('ETag'))

    def test_get_of_an_upper_case_id_answers_the_agent(self):
        created, _ = self.create()
        resp = self.call('GET', '/api/v1/agents/' + created['id'].upper())
        self.assertEqual(self.assertJson(resp, 200)['id'], created['id'])

    def test_get_of_an_unknown_id_answers_404(self):
        resp = self.call('GET', '/api/v1/agents/' + random_uuid())
        self.assertProblem(resp, 404)

    def test_non_uuid_id_in_path_answers_404(self):
        for bad in ('not-a-uuid', '123', random_uuid() + '0',
                    random_uuid()[:-1], "1' OR '1'='1"):
            with self.subTest(id=bad):
                resp = self.call('GET', '/api/v1/agents/' +
                                 bad.replace(' ', '%20').replace("'", '%27'))
                self.assertProblem(resp, 404)


class AgentListTest(AgentTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A tenant of its own, so the list holds exactly these five.
        cls.tenant = cls.stack.new_tenant('list')
        cls.schema = cls.stack.tenant_schema(cls.tenant.id)
        cls.ids = []
        for i in range(5):
            resp = cls.stack.request('POST', '/api/v1/agents',
                                     host=cls.tenant.slug,
                                     token=cls.tenant.token,
                                     json=agent_body(name='agent %d' % i))
            if resp.status != 201:
                raise AssertionError(resp)
            cls.ids.append(resp.json()['id'])
            time.sleep(0.002)

    def page(self, query):
        return self.call('GET', '/api/v1/agents' + query)

    def test_list_answers_newest_first(self):
        body = self.assertJson(self.page(''), 200)
        self.assertEqual([a['id'] for a in body['items']],
                         list(reversed(self.ids)))
        self.assertIsNone(body['next_cursor'])
        self.assertEqual(body['items'][0]['name'], 'agent 4')

    def test_list_pages_with_limit_and_cursor(self):
        seen = []
        pages = []
        query = '?limit=2'
        while True:
            body = self.assertJson(self.page(query), 200)
            pages.append(len(body['items']))
            seen += [a['id'] for a in body['items']]
            if body['next_cursor'] is None:
                break
            self.assertIsInstance(body['next_cursor'], str)
            self.assertLess(len(pages), 10)
            query = '?limit=2&cursor=' + body['next_cursor']
        self.assertEqual(pages, [2, 2, 1])
        self.assertEqual(seen, list(reversed(self.ids)))

    def test_list_page_that_ends_exactly_has_a_null_cursor_next(self):
        body = self.assertJson(self.page('?limit=5'), 200)
        self.assertEqual(len(body['items']), 5)
        if body['next_cursor'] is not None:
            after = self.assertJson(
                self.page('?limit=5&cursor=' + body['next_cursor']), 200)
            self.assertEqual(after, {'items': [], 'next_cursor': None})

    def test_list_accepts_limits_1_and_100(self):
        self.assertEqual(
            len(self.assertJson(self.page('?limit=1'), 200)['items']), 1)
        self.assertEqual(
            len(self.assertJson(self.page('?limit=100'), 200)['items']), 5)

    def test_list_with_a_bad_limit_answers_400(self):
        for limit in ('0', '101', 'abc', '-1', '', '1.5', '2x',
                      '99999999999999999999'):
            with self.subTest(limit=limit):
                self.assertProblem(self.page('?limit=' + limit), 400)

    def test_list_with_a_bad_cursor_answers_400(self):
        for cursor in ('garbage', 'AAAA', '%00', random_uuid()):
            with self.subTest(cursor=cursor):
                self.assertProblem(self.page('?cursor=' + cursor), 400)

    def test_bad_query_parameter_is_named_in_the_errors(self):
        # The problem's errors name the parameter, as they name a body
        # field with its JSON pointer.
        self.assertProblem(self.page('?limit=0'), 400, fields=['limit'])
        self.assertProblem(self.page('?cursor=garbage'), 400,
                           fields=['cursor'])

    def test_list_with_an_unknown_parameter_answers_400(self):
        self.assertProblem(self.page('?limit=2&colour=red'), 400)


class AgentUpdateTest(AgentTestCase):

    def test_patch_changes_only_the_given_fields(self):
        created, resp = self.create(backstory='old story',
                                    config={'k': 1})
        time.sleep(0.01)
        patched = self.call('PATCH', '/api/v1/agents/' + created['id'],
                            json={'goal': 'A new goal'})
        body = self.assertJson(patched, 200)

        expected = dict(created, goal='A new goal',
                        updated_at=body['updated_at'])
        self.assertEqual(body, expected)
        self.assertGreater(parse_time(body['updated_at']),
                           parse_time(created['updated_at']))
        self.assertNotEqual(patched.headers.get('ETag'),
                            resp.headers.get('ETag'))
        self.assertEqual(self.stored(created['id'], 'goal, backstory'),
                         [('A new goal', 'old story')])

    def test_patch_merges_config_as_a_json_merge_patch(self):
        created, _ = self.create(config={
            'x': 1, 'y': 2, 't': 0.1, 'n': {'a': 1, 'b': 2}})
        body = self.assertJson(
            self.call('PATCH', '/api/v1/agents/' + created['id'],
                      json={'config': {'y': None, 'n': {'a': None},
                                       'z': [1, {'q': None}]}}), 200)
        # RFC 7396: null removes, objects merge, anything else replaces.
        self.assertEqual(body['config'], {
            'x': 1, 't': 0.1, 'n': {'b': 2}, 'z': [1, {'q': None}]})
        self.assertEqual(self.assertJson(self.call(
            'GET', '/api/v1/agents/' + created['id']), 200)['config'],
            body['config'])

    def test_patch_that_would_grow_config_past_its_cap_answers_422(self):
        created, _ = self.create(config={'a': 'x' * 40000})
        resp = self.call('PATCH', '/api/v1/agents/' + created['id'],
                         json={'config': {'b': 'y' * 40000}})
        self.assertProblem(resp, 422, fields=['/config'])
        stored = self.assertJson(self.call(
            'GET', '/api/v1/agents/' + created['id']), 200)['config']
        self.assertEqual(stored, {'a': 'x' * 40000})

    def test_patch_can_set_a_nullable_field_to_null(self):
        created, _ = self.create(backstory='to be removed')
        body = self.assertJson(
            self.call('PATCH', '/api/v1/agents/' + created['id'],
                      json={'backstory': None}), 200)
        self.assertIsNone(body['backstory'])
        self.assertEqual(self.stored(created['id'], 'backstory'), [(None,)])

    def test_patch_with_a_stale_if_match_answers_412(self):
        created, resp = self.create()
        old_etag = resp.headers['ETag']
        self.assertJson(self.call('PATCH', '/api/v1/agents/' + created['id'],
                                  json={'goal': 'second'}), 200)

        stale = self.call('PATCH', '/api/v1/agents/' + created['id'],
                          json={'goal': 'third'},
                          headers={'If-Match': old_etag})
        self.assertProblem(stale, 412)
        self.assertEqual(self.stored(created['id'], 'goal'), [('second',)])

    def test_patch_with_the_current_if_match_answers_200(self):
        created, _ = self.create()
        current = self.call('GET', '/api/v1/agents/' + created['id'])
        resp = self.call('PATCH', '/api/v1/agents/' + created['id'],
                         json={'goal': 'matched'},
                         headers={'If-Match': current.headers['ETag']})
        self.assertEqual(self.assertJson(resp, 200)['goal'], 'matched')
        self.assertNotEqual(resp.headers.get('ETag'),
                            current.headers['ETag'])

    def test_patch_with_invalid_fields_answers_422_and_changes_nothing(self):
        created, _ = self.create()
        for patch, field in (({'name': None}, '/name'),
                             ({'verbose': 'no'}, '/verbose'),
                             ({'id': random_uuid()}, '/id'),
                             ({'updated_at': '2026-01-01T00:00:00Z'},
                              '/updated_at'),
                             ({'colour': 'red'}, '/colour')):
            with self.subTest(patch=patch):
                resp = self.call('PATCH', '/api/v1/agents/' + created['id'],
                                 json=patch)
                self.assertProblem(resp, 422, fields=[field])
        got = self.assertJson(
            self.call('GET', '/api/v1/agents/' + created['id']), 200)
        self.assertEqual(got, created)

    def test_patch_of_an_unknown_id_answers_404(self):
        resp = self.call('PATCH', '/api/v1/agents/' + random_uuid(),
                         json={'goal': 'x'})
        self.assertProblem(resp, 404)


class AgentDeleteTest(AgentTestCase):

    def test_delete_answers_204_and_the_agent_is_gone(self):
        created, _ = self.create()
        resp = self.call('DELETE', '/api/v1/agents/' + created['id'])
        self.assertStatus(resp, 204)
        self.assertEqual(resp.body, b'')
        self.assertProblem(
            self.call('GET', '/api/v1/agents/' + created['id']), 404)
        self.assertEqual(self.stored(created['id']), [])

    def test_delete_with_a_stale_if_match_answers_412(self):
        created, resp = self.create()
        self.assertJson(self.call('PATCH', '/api/v1/agents/' + created['id'],
                                  json={'goal': 'changed'}), 200)

        stale = self.call('DELETE', '/api/v1/agents/' + created['id'],
                          headers={'If-Match': resp.headers['ETag']})
        self.assertProblem(stale, 412)
        self.assertEqual(len(self.stored(created['id'])), 1)

    def test_delete_with_the_current_if_match_answers_204(self):
        created, resp = self.create()
        deleted = self.call('DELETE', '/api/v1/agents/' + created['id'],
                            headers={'If-Match': resp.headers['ETag']})
        self.assertStatus(deleted, 204)
        self.assertEqual(self.stored(created['id']), [])

    def test_delete_twice_answers_404(self):
        created, _ = self.create()
        self.assertStatus(
            self.call('DELETE', '/api/v1/agents/' + created['id']), 204)
        self.assertProblem(
            self.call('DELETE', '/api/v1/agents/' + created['id']), 404)


if __name__ == '__main__':
    crewtest.main()
