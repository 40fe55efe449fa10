"""The tools resource: container images with a JSON Schema of their
arguments."""

import datetime
import time

import crewtest
from crewtest import StackTestCase, random_uuid

TOOL_KEYS = {'id', 'tenant_id', 'name', 'description', 'docker_image',
             'schema', 'is_active', 'created_at', 'updated_at'}
DIGEST = 'sha256:' + '0123456789abcdef' * 4
SEARCH_SCHEMA = {'type': 'object',
                 'properties': {'query': {'type': 'string'}},
                 'required': ['query']}


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))


def tool_body(**changes):
    body = {'name': 'web-search',
            'docker_image': 'ghcr.io/acme/web-search:1.2',
            'schema': SEARCH_SCHEMA}
    body.update(changes)
    return body


def add_user(stack, tenant, role):
    """A user of tenant with this role (and the admin's password), logged
    in; returns its token."""
    email = '%s@%s.test' % (role, tenant.slug)
    stack.psql(
        "INSERT INTO public.users (tenant_id, email, password_hash, role)"
        " SELECT tenant_id, :'email', password_hash, :'role'"
        " FROM public.users WHERE tenant_id = :'t' AND role = 'admin'",
        email=email, role=role, t=tenant.id)
    return stack.login(tenant.slug, email=email)


class ToolTestCase(StackTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant = cls.stack.new_tenant('tools')
        cls.schema = cls.stack.tenant_schema(cls.tenant.id)

    def call(self, method, path, token=None, **kwargs):
        return self.stack.request(
            method, path, host=self.tenant.slug,
            token=self.tenant.token if token is None else token, **kwargs)

    def create(self, **changes):
        resp = self.call('POST', '/api/v1/tools', json=tool_body(**changes))
        return self.assertJson(resp, 201), resp

    def stored(self, tool_id, columns='name, docker_image'):
        return self.stack.psql(
            'SELECT %s FROM :"schema".tools WHERE id = :\'id\'' % columns,
            schema=self.schema, id=tool_id)

    def count(self):
        return self.stack.psql_value(
            'SELECT count(*) FROM :"schema".tools', schema=self.schema)


class ToolCreateTest(ToolTestCase):

    def test_create_answers_201_with_location_etag_and_defaults(self):
        body, resp = self.create()
        self.assertEqual(set(body), TOOL_KEYS)
        self.assertUuid(body['id'])
        self.assertEqual(body['tenant_id'], self.tenant.id)
        self.assertEqual(body['name'], 'web-search')
        self.assertIsNone(body['description'])
        self.assertEqual(body['docker_image'], 'ghcr.io/acme/web-search:1.2')
        self.assertEqual(body['schema'], SEARCH_SCHEMA)
        self.assertIs(body['is_active'], True)
        self.assertTimestamp(body['created_at'])
        self.assertEqual(body['created_at'], body['updated_at'])
        self.assertEqual(resp.headers.get('Location'),
                         '/api/v1/tools/' + body['id'])
        self.assertTrue(resp.headers.get('ETag'), resp.headers)

    def test_create_stores_the_tool_in_the_tenants_schema(self):
        body, _ = self.create(description='Searches the web',
                              is_active=False)
        rows = self.stored(body['id'], 'tenant_id, name, description, '
                           'docker_image, schema::text, is_active')
        self.assertEqual(rows, [(
            self.tenant.id, 'web-search', 'Searches the web',
            'ghcr.io/acme/web-search:1.2',
            '{"type": "object", "required": ["query"], '
            '"properties": {"query": {"type": "string"}}}', 'f')])

    def test_create_accepts_valid_image_references(self):
        for image in ('ubuntu', 'ubuntu:22.04', 'library/ubuntu:latest',
                      'docker.io/library/python:3.12-slim',
                      'localhost:5000/tools/search',
                      'registry.example.com:443/a/b/c:v1.2.3-rc.1',
                      '192.168.1.10:5000/tool', '[::1]:5000/tool:dev',
                      'my__tool', 'my-----tool', 'tool@' + DIGEST,
                      'ghcr.io/acme/tool:1.0@' + DIGEST,
                      'tool:' + 'T' * 128):
            with self.subTest(image=image):
                body, _ = self.create(docker_image=image)
                self.assertEqual(body['docker_image'], image)
                self.assertEqual(self.stored(body['id'], 'docker_image'),
                                 [(image,)])

    def test_create_with_invalid_image_references_answers_422(self):
        before = self.count()
        for image in ('Ubuntu', 'ubuntu:', ':latest', 'ubuntu:-x',
                      'ubuntu:' + 't' * 129, 'my___tool', '-tool', 'tool-',
                      'org//tool', '/tool', 'tool/', 'my tool',
                      'registry.com:99999/tool', 'registry.com:port/tool',
                      '-registry.com/tool', '[::1/tool',
                      'tool@sha256:' + 'a' * 63, 'tool@sha256:' + 'a' * 65,
                      'tool@sha256:' + 'A' * 64, 'tool@sha512:' + 'a' * 64,
                      'tool@', 'caf\u00e9', 'tool\ttab',
                      'http://registry.com/tool'):
            with self.subTest(image=image):
                resp = self.call('POST', '/api/v1/tools',
                                 json=tool_body(docker_image=image))
                self.assertProblem(resp, 422, fields=['/docker_image'])
        self.assertEqual(self.count(), before)

    def test_create_with_an_image_reference_over_255_bytes_answers_422(self):
        longest = 'a/' * 127 + 'a'
        body, _ = self.create(docker_image=longest)
        self.assertEqual(body['docker_image'], longest)
        resp = self.call('POST', '/api/v1/tools',
                         json=tool_body(docker_image=longest + 'a'))
        self.assertProblem(resp, 422, fields=['/docker_image'])

    def test_create_accepts_every_json_schema_type(self):
        for schema in ({'type': 'string'}, {'type': 'integer'},
                       {'type': 'number'}, {'type': 'boolean'},
                       {'type': 'null'}, {'type': 'array',
                                          'items': {'type': 'string'}},
                       {'type': ['string', 'null']},
                       {'type': 'object', 'additionalProperties': False}):
            with self.subTest(schema=schema):
                body, _ = self.create(schema=schema)
                self.assertEqual(body['schema'], schema)

    def test_create_accepts_a_schema_nested_as_deep_as_a_body_may_be(self):
        def nested(levels):
            return {} if levels == 1 else {'x': nested(levels - 1)}

        # The body, the schema and 30 levels below it: 32 in all.
        schema = {'type': 'object', 'x': nested(30)}
        body, _ = self.create(schema=schema)
        self.assertEqual(body['schema'], schema)

        resp = self.call('POST', '/api/v1/tools', json=tool_body(
            schema={'type': 'object', 'x': nested(31)}))
        self.assertProblem(resp, 400)

    def test_create_with_a_schema_without_a_valid_type_answers_422(self):
        before = self.count()
        for schema in ({}, {'properties': {}}, {'type': 'text'},
                       {'type': 'Object'}, {'type': 5}, {'type': None},
                       {'type': {'name': 'object'}}, {'type': []},
                       {'type': ['string', 'string']},
                       {'type': ['string', 3]}, {'type': ['strings']}):
            with self.subTest(schema=schema):
                resp = self.call('POST', '/api/v1/tools',
                                 json=tool_body(schema=schema))
                self.assertProblem(resp, 422, fields=['/schema'])
        self.assertEqual(self.count(), before)

    def test_create_without_required_fields_answers_422_naming_each(self):
        resp = self.call('POST', '/api/v1/tools', json={})
        self.assertProblem(resp, 422,
                           fields=['/docker_image', '/name', '/schema'])

        resp = self.call('POST', '/api/v1/tools',
                         json={'name': 'x', 'description': 'y'})
        self.assertProblem(resp, 422, fields=['/docker_image', '/schema'])

    def test_create_with_wrong_types_answers_422(self):
        cases = [
            ('name', 5), ('name', None), ('name', ''), ('name', ['x']),
            ('name', 'x' * 256), ('name', 'tab\there'),
            ('description', 7), ('description', {'a': 1}),
            ('docker_image', 5), ('docker_image', None),
            ('docker_image', ''), ('docker_image', ['ubuntu']),
            ('schema', []), ('schema', 'object'), ('schema', None),
            ('schema', True), ('is_active', 'yes'), ('is_active', 1),
            ('is_active', None),
        ]
        before = self.count()
        for field, value in cases:
            with self.subTest(field=field, value=value):
                resp = self.call('POST', '/api/v1/tools',
                                 json=tool_body(**{field: value}))
                self.assertProblem(resp, 422, fields=['/' + field])
        self.assertEqual(self.count(), before)

    def test_create_reports_every_bad_field_at_once(self):
        resp = self.call('POST', '/api/v1/tools', json=tool_body(
            name=5, docker_image='Bad Image', schema={'type': 'text'}))
        self.assertProblem(resp, 422, fields=['/name', '/docker_image',
                                              '/schema'])

    def test_create_with_an_unknown_field_answers_422(self):
        resp = self.call('POST', '/api/v1/tools',
                         json=tool_body(command='rm -rf /'))
        self.assertProblem(resp, 422, fields=['/command'])

    def test_create_with_server_owned_fields_answers_422(self):
        for field, value in (('id', random_uuid()),
                             ('tenant_id', self.tenant.id),
                             ('created_at', '2026-01-01T00:00:00Z'),
                             ('updated_at', '2026-01-01T00:00:00Z')):
            with self.subTest(field=field):
                resp = self.call('POST', '/api/v1/tools',
                                 json=tool_body(**{field: value}))
                self.assertProblem(resp, 422, fields=['/' + field])

    def test_create_with_malformed_json_answers_400(self):
        resp = self.call('POST', '/api/v1/tools', body='{"name": "x",',
                         headers={'Content-Type': 'application/json'})
        self.assertProblem(resp, 400)

    def test_create_with_another_media_type_answers_415(self):
        resp = self.call('POST', '/api/v1/tools', body='name=x',
                         headers={'Content-Type':
                                  'application/x-www-form-urlencoded'})
        self.assertProblem(resp, 415)


class ToolReadTest(ToolTestCase):

    def test_get_answers_200_with_the_tool_and_its_etag(self):
        created, create_resp = self.create(description='d')
        resp = self.call('GET', '/api/v1/tools/' + created['id'])
        self.assertEqual(self.assertJson(resp, 200), created)
        self.assertEqual(resp.headers.get('ETag'),
                         create_resp.headers.get('ETag'))

    def test_get_of_an_unknown_id_answers_404(self):
        self.assertProblem(
            self.call('GET', '/api/v1/tools/' + random_uuid()), 404)

    def test_non_uuid_id_in_path_answers_404(self):
        for bad in ('not-a-uuid', '123', random_uuid() + '0'):
            with self.subTest(id=bad):
                self.assertProblem(self.call('GET', '/api/v1/tools/' + bad),
                                   404)


class ToolListTest(ToolTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A tenant of its own, so the list holds exactly these five;
        # the even ones are active.
        cls.tenant = cls.stack.new_tenant('tool-list')
        cls.schema = cls.stack.tenant_schema(cls.tenant.id)
        cls.ids = []
        for i in range(5):
            resp = cls.stack.request(
                'POST', '/api/v1/tools', host=cls.tenant.slug,
                token=cls.tenant.token,
                json=tool_body(name='tool %d' % i, is_active=i % 2 == 0))
            if resp.status != 201:
                raise AssertionError(resp)
            cls.ids.append(resp.json()['id'])
            time.sleep(0.002)

    def page(self, query):
        return self.call('GET', '/api/v1/tools' + query)

    def walk(self, query):
        """Every page of a list; returns (ids, sizes of the pages)."""
        ids, sizes = [], []
        cursor = None
        while True:
            q = query + ('&cursor=' + cursor if cursor else '')
            body = self.assertJson(self.page(q), 200)
            sizes.append(len(body['items']))
            ids += [t['id'] for t in body['items']]
            cursor = body['next_cursor']
            if cursor is None:
                return ids, sizes
            self.assertLess(len(sizes), 10)

    def test_list_answers_newest_first(self):
        body = self.assertJson(self.page(''), 200)
        self.assertEqual(set(body), {'items', 'next_cursor'})
        self.assertEqual([t['id'] for t in body['items']],
                         list(reversed(self.ids)))
        self.assertIsNone(body['next_cursor'])
        self.assertEqual(set(body['items'][0]), TOOL_KEYS)
        self.assertEqual(body['items'][0]['name'], 'tool 4')

    def test_list_pages_with_limit_and_cursor(self):
        ids, sizes = self.walk('?limit=2')
        self.assertEqual(sizes, [2, 2, 1])
        self.assertEqual(ids, list(reversed(self.ids)))

    def test_list_filters_on_is_active(self):
        active = [self.ids[4], self.ids[2], self.ids[0]]
        inactive = [self.ids[3], self.ids[1]]
        body = self.assertJson(self.page('?is_active=true'), 200)
        self.assertEqual([t['id'] for t in body['items']], active)
        self.assertTrue(all(t['is_active'] for t in body['items']))
        body = self.assertJson(self.page('?is_active=false'), 200)
        self.assertEqual([t['id'] for t in body['items']], inactive)

    def test_list_filter_pages_with_limit_and_cursor(self):
        ids, sizes = self.walk('?is_active=true&limit=2')
        self.assertEqual(sizes, [2, 1])
        self.assertEqual(ids, [self.ids[4], self.ids[2], self.ids[0]])

    def test_list_with_a_bad_filter_value_answers_400_naming_it(self):
        for value in ('yes', '1', 'TRUE', ''):
            with self.subTest(value=value):
                self.assertProblem(self.page('?is_active=' + value), 400,
                                   fields=['is_active'])

    def test_list_with_a_bad_limit_or_cursor_answers_400(self):
        self.assertProblem(self.page('?limit=0'), 400, fields=['limit'])
        self.assertProblem(self.page('?limit=101'), 400, fields=['limit'])
        self.assertProblem(self.page('?cursor=garbage'), 400,
                           fields=['cursor'])

    def test_list_with_an_unknown_parameter_answers_400(self):
        self.assertProblem(self.page('?docker_image=ubuntu'), 400)


class ToolUpdateTest(ToolTestCase):

    def test_patch_changes_only_the_given_fields(self):
        created, resp = self.create(description='old')
        time.sleep(0.01)
        patched = self.call('PATCH', '/api/v1/tools/' + created['id'],
                            json={'docker_image': 'ghcr.io/acme/search:2.0',
                                  'is_active': False})
        body = self.assertJson(patched, 200)
        self.assertEqual(body, dict(created,
                                    docker_image='ghcr.io/acme/search:2.0',
                                    is_active=False,
                                    updated_at=body['updated_at']))
        self.assertGreater(parse_time(body['updated_at']),
                           parse_time(created['updated_at']))
        self.assertNotEqual(patched.headers.get('ETag'),
                            resp.headers.get('ETag'))
        self.assertEqual(
            self.stored(created['id'], 'docker_image, description, '
                        'is_active'),
            [('ghcr.io/acme/search:2.0', 'old', 'f')])

    def test_patch_merges_the_schema_as_a_merge_patch(self):
        # PATCH is an RFC 7396 merge patch: members sent replace, null
        # members go, members not sent stay.
        created, _ = self.create()
        self.assertIn('properties', created['schema'])
        body = self.assertJson(
            self.call('PATCH', '/api/v1/tools/' + created['id'],
                      json={'schema': {'type': ['object', 'null'],
                                       'required': None,
                                       'properties': None}}), 200)
        self.assertEqual(body['schema'], {'type': ['object', 'null']})
        self.assertEqual(self.stored(created['id'], 'schema::text'),
                         [('{"type": ["object", "null"]}',)])

        body = self.assertJson(
            self.call('PATCH', '/api/v1/tools/' + created['id'],
                      json={'schema': {'description': 'kept type'}}), 200)
        self.assertEqual(body['schema'], {'type': ['object', 'null'],
                                          'description': 'kept type'})

    def test_patch_can_set_the_description_to_null(self):
        created, _ = self.create(description='to be removed')
        body = self.assertJson(
            self.call('PATCH', '/api/v1/tools/' + created['id'],
                      json={'description': None}), 200)
        self.assertIsNone(body['description'])
        self.assertEqual(self.stored(created['id'], 'description'),
                         [(None,)])

    def test_patch_with_invalid_fields_answers_422_and_changes_nothing(self):
        created, _ = self.create()
        for patch, field in (({'docker_image': 'Not/Valid'},
                              '/docker_image'),
                             ({'docker_image': None}, '/docker_image'),
                             ({'schema': {'type': 'text'}}, '/schema'),
                             # a merge patch that removes the type
                             ({'schema': {'type': None}}, '/schema'),
                             ({'schema': None}, '/schema'),
                             ({'name': None}, '/name'),
                             ({'is_active': 'no'}, '/is_active'),
                             ({'id': random_uuid()}, '/id'),
                             ({'tenant_id': random_uuid()}, '/tenant_id'),
                             ({'updated_at': '2026-01-01T00:00:00Z'},
                              '/updated_at'),
                             ({'image': 'ubuntu'}, '/image')):
            with self.subTest(patch=patch):
                resp = self.call('PATCH', '/api/v1/tools/' + created['id'],
                                 json=patch)
                self.assertProblem(resp, 422, fields=[field])
        got = self.assertJson(
            self.call('GET', '/api/v1/tools/' + created['id']), 200)
        self.assertEqual(got, created)

    def test_empty_patch_changes_nothing(self):
        created, resp = self.create()
        patched = self.call('PATCH', '/api/v1/tools/' + created['id'],
                            json={})
        self.assertEqual(self.assertJson(patched, 200), created)
        self.assertEqual(patched.headers.get('ETag'), resp.headers['ETag'])

    def test_patch_with_a_stale_if_match_answers_412(self):
        created, resp = self.create()
        old_etag = resp.headers['ETag']
        self.assertJson(self.call('PATCH', '/api/v1/tools/' + created['id'],
                                  json={'name': 'second'}), 200)

        stale = self.call('PATCH', '/api/v1/tools/' + created['id'],
                          json={'name': 'third'},
                          headers={'If-Match': old_etag})
        self.assertProblem(stale, 412)
        self.assertEqual(self.stored(created['id'], 'name'), [('second',)])

    def test_patch_with_the_current_if_match_answers_200(self):
        created, _ = self.create()
        current = self.call('GET', '/api/v1/tools/' + created['id'])
        resp = self.call('PATCH', '/api/v1/tools/' + created['id'],
                         json={'name': 'matched'},
                         headers={'If-Match': current.headers['ETag']})
        self.assertEqual(self.assertJson(resp, 200)['name'], 'matched')
        self.assertNotEqual(resp.headers.get('ETag'),
                            current.headers['ETag'])

    def test_patch_of_an_unknown_id_answers_404(self):
        resp = self.call('PATCH', '/api/v1/tools/' + random_uuid(),
                         json={'name': 'x'})
        self.assertProblem(resp, 404)


class ToolDeleteTest(ToolTestCase):

    def test_delete_answers_204_and_the_tool_is_gone(self):
        created, _ = self.create()
        resp = self.call('DELETE', '/api/v1/tools/' + created['id'])
        self.assertStatus(resp, 204)
        self.assertEqual(resp.body, b'')
        self.assertProblem(
            self.call('GET', '/api/v1/tools/' + created['id']), 404)
        self.assertEqual(self.stored(created['id']), [])

    def test_delete_with_a_stale_if_match_answers_412(self):
        created, resp = self.create()
        self.assertJson(self.call('PATCH', '/api/v1/tools/' + created['id'],
                                  json={'name': 'changed'}), 200)
        stale = self.call('DELETE', '/api/v1/tools/' + created['id'],
                          headers={'If-Match': resp.headers['ETag']})
        self.assertProblem(stale, 412)
        self.assertEqual(len(self.stored(created['id'])), 1)

    def test_delete_with_the_current_if_match_answers_204(self):
        created, resp = self.create()
        deleted = self.call('DELETE', '/api/v1/tools/' + created['id'],
                            headers={'If-Match': resp.headers['ETag']})
        self.assertStatus(deleted, 204)
        self.assertEqual(self.stored(created['id']), [])

    def test_delete_twice_answers_404(self):
        created, _ = self.create()
        self.assertStatus(
            self.call('DELETE', '/api/v1/tools/' + created['id']), 204)
        self.assertProblem(
            self.call('DELETE', '/api/v1/tools/' + created['id']), 404)


class ToolIsolationTest(ToolTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other = cls.stack.new_tenant('tool-other')

    def other_tool(self):
        resp = self.stack.request('POST', '/api/v1/tools',
                                  host=self.other.slug,
                                  token=self.other.token, json=tool_body())
        return self.assertJson(resp, 201)

    def test_another_tenants_id_answers_404_for_every_verb(self):
        theirs = self.other_tool()
        for method, body in (('GET', None), ('PATCH', {'name': 'mine'}),
                             ('DELETE', None)):
            with self.subTest(method=method):
                foreign = self.call(method, '/api/v1/tools/' + theirs['id'],
                                    json=body)
                unknown = self.call(method, '/api/v1/tools/' + random_uuid(),
                                    json=body)
                self.assertProblem(foreign, 404)
                self.assertSameProblem(foreign, unknown)

        # Still there, unchanged, for its owner.
        resp = self.stack.request('GET', '/api/v1/tools/' + theirs['id'],
                                  host=self.other.slug,
                                  token=self.other.token)
        self.assertEqual(self.assertJson(resp, 200), theirs)

    def test_list_holds_only_the_tenants_own_tools(self):
        theirs = self.other_tool()
        mine, _ = self.create()
        body = self.assertJson(self.call('GET', '/api/v1/tools?limit=100'),
                               200)
        ids = [t['id'] for t in body['items']]
        self.assertIn(mine['id'], ids)
        self.assertNotIn(theirs['id'], ids)
        self.assertTrue(all(t['tenant_id'] == self.tenant.id
                            for t in body['items']))

    def test_another_tenants_token_answers_401(self):
        resp = self.call('GET', '/api/v1/tools', token=self.other.token)
        self.assertProblem(resp, 401)


class ToolRoleTest(ToolTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.viewer = add_user(cls.stack, cls.tenant, 'viewer')
        cls.member = add_user(cls.stack, cls.tenant, 'member')

    def test_viewer_reads_but_may_not_write(self):
        created, _ = self.create()
        path = '/api/v1/tools/' + created['id']
        self.assertJson(self.call('GET', '/api/v1/tools',
                                  token=self.viewer), 200)
        self.assertJson(self.call('GET', path, token=self.viewer), 200)
        self.assertProblem(self.call('POST', '/api/v1/tools',
                                     token=self.viewer, json=tool_body()),
                           403)
        self.assertProblem(self.call('PATCH', path, token=self.viewer,
                                     json={'name': 'x'}), 403)
        self.assertProblem(self.call('DELETE', path, token=self.viewer), 403)
        self.assertEqual(self.stored(created['id'], 'name'),
                         [('web-search',)])

    def test_member_creates_changes_and_deletes(self):
        resp = self.call('POST', '/api/v1/tools', token=self.member,
                         json=tool_body())
        created = self.assertJson(resp, 201)
        path = '/api/v1/tools/' + created['id']
        self.assertEqual(self.assertJson(
            self.call('PATCH', path, token=self.member,
                      json={'name': 'renamed'}), 200)['name'], 'renamed')
        self.assertStatus(self.call('DELETE', path, token=self.member), 204)


if __name__ == '__main__':
    crewtest.main()
