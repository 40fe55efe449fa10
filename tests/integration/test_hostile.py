"""Inputs that tried to break crewd from outside, kept as tests: each
answers a clear 4xx (never a 500), costs what it should, and leaves the
stored data and the workers as they were."""

import base64
import json as jsonlib
import time

import crewtest
from crewtest import StackTestCase, random_uuid


def agent(**changes):
    body = {'name': 'Scout', 'role': 'Researcher', 'goal': 'Find things'}
    body.update(changes)
    return body


class HostileInputTest(StackTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.t = cls.stack.new_tenant('hostile')

    def call(self, method, path, **kwargs):
        kwargs.setdefault('token', self.t.token)
        return self.stack.request(method, path, host=self.t.slug, **kwargs)

    def agent_count(self):
        schema = self.stack.tenant_schema(self.t.id)
        return int(self.stack.psql_value(
            'SELECT count(*) FROM :"schema".agents', schema=schema))

    # -- numbers that PostgreSQL would write out in full ---------------

    def test_tiny_exponents_in_config_are_refused_not_amplified(self):
        before = self.agent_count()
        numbers = ','.join(['1e-16383'] * 6000)
        body = jsonlib.dumps(agent(config={'a': 'X'})).replace(
            '"X"', '[' + numbers + ']')

        resp = self.call('POST', '/api/v1/agents', body=body,
                         headers={'Content-Type': 'application/json'})

        problem = self.assertProblem(resp, 400)
        self.assertIn('number out of range', problem['detail'])
        self.assertLess(len(resp.body), 2000)
        self.assertEqual(self.agent_count(), before)

    def test_huge_exponents_in_config_are_refused(self):
        for number in ('1e64', '1e-16384', '1e300', '-9e99'):
            with self.subTest(number=number):
                body = '{"name":"N","role":"R","goal":"G",' \
                    '"config":{"n":%s}}' % number
                resp = self.call(
                    'POST', '/api/v1/agents', body=body,
                    headers={'Content-Type': 'application/json'})
                self.assertProblem(resp, 400)

    def test_ordinary_numbers_in_config_round_trip(self):
        config = {'temperature': 0.7, 'max_tokens': 4096,
                  'big': 12345678901234567890, 'small': 1e-9}
        resp = self.call('POST', '/api/v1/agents', json=agent(config=config))
        self.assertEqual(self.assertJson(resp, 201)['config'], config)

    # -- cursors -------------------------------------------------------

    def test_forged_cursors_are_400_before_any_sql(self):
        forged = [
            '9999-99-99T99:99:99Z,' + random_uuid(),
            '2026-02-30T00:00:00Z,' + random_uuid(),
            '0000-01-01T00:00:00Z,' + random_uuid(),
        ]
        for text in forged:
            cursor = base64.urlsafe_b64encode(
                text.encode() + b'\0' * 16).decode().rstrip('=')
            with self.subTest(text=text):
                resp = self.call('GET', '/api/v1/agents?cursor=' + cursor)
                self.assertProblem(resp, 400, fields=['cursor'])

    def test_a_cursor_from_the_server_still_pages(self):
        for i in range(3):
            self.assertJson(self.call('POST', '/api/v1/agents',
                                      json=agent(name='Page %d' % i)), 201)
        first = self.assertJson(self.call('GET', '/api/v1/agents?limit=2'),
                                200)
        self.assertIsNotNone(first['next_cursor'])
        second = self.assertJson(self.call(
            'GET', '/api/v1/agents?limit=2&cursor=' + first['next_cursor']),
            200)
        self.assertFalse({a['id'] for a in first['items']} &
                         {a['id'] for a in second['items']})

    # -- the log -------------------------------------------------------

    def test_control_characters_in_a_path_never_reach_the_log(self):
        marker = 'inject%d' % time.time_ns()
        resp = self.call('GET', '/api/v1/agents%1b%5b31m' + marker +
                         '%0d%0aFAKE%20LINE', token=None)
        self.assertProblem(resp, 404)

        lines = [line for line in self.stack.crewd_log().splitlines()
                 if marker in line]
        self.assertEqual(len(lines), 1, lines)
        self.assertFalse(any(ord(c) < 0x20 or ord(c) == 0x7f
                             for c in lines[0]), repr(lines[0]))

    # -- one-line strings ----------------------------------------------

    def test_names_with_hidden_or_reordering_characters_are_refused(self):
        before = self.agent_count()
        for name in ('a\u0085b', 'a\u009bb', 'evil\u202egnp.exe',
                     'a\u2066b', '   ', '\u00a0\u00a0', 'tab\there'):
            with self.subTest(name=repr(name)):
                resp = self.call('POST', '/api/v1/agents',
                                 json=agent(name=name))
                self.assertProblem(resp, 422, fields=['/name'])
        self.assertEqual(self.agent_count(), before)

    def test_multi_line_text_is_still_welcome_where_it_belongs(self):
        resp = self.call('POST', '/api/v1/agents', json=agent(
            goal='Line one\nLine two\n\tindented', name='Caf\u00e9 \u00fc'))
        body = self.assertJson(resp, 201)
        self.assertEqual(body['goal'], 'Line one\nLine two\n\tindented')

    # -- sign-up -------------------------------------------------------

    def test_slugs_and_emails_of_reserved_or_broken_shape_are_refused(self):
        cases = [
            ({'slug': 'ab--cd'}, '/slug'),
            ({'admin_email': 'a@b..test'}, '/admin_email'),
            ({'admin_email': '.a@b.test'}, '/admin_email'),
            ({'admin_email': 'a.@b.test'}, '/admin_email'),
        ]
        for change, field in cases:
            body = {'name': 'Odd', 'slug': 'odd-%d' % time.time_ns(),
                    'admin_email': 'admin@odd.test',
                    'admin_password': crewtest.DEFAULT_PASSWORD}
            body.update(change)
            with self.subTest(change=change):
                resp = self.stack.request('POST', '/api/v1/tenants',
                                          json=body)
                self.assertProblem(resp, 422, fields=[field])

    # -- methods -------------------------------------------------------

    def test_head_answers_like_get_without_a_body(self):
        get = self.call('GET', '/api/v1/agents')
        head = self.call('HEAD', '/api/v1/agents')
        self.assertEqual(head.status, 200)
        self.assertEqual(head.body, b'')
        self.assertEqual(head.headers.get('Content-Length'),
                         str(len(get.body)))

        health = self.stack.request('HEAD', '/healthz')
        self.assertEqual(health.status, 200)
        self.assertEqual(health.body, b'')

    def test_a_wrong_method_lists_head_among_the_allowed(self):
        resp = self.call('PUT', '/api/v1/agents', json=agent())
        self.assertProblem(resp, 405)
        self.assertEqual(resp.headers.get('Allow'), 'GET, POST, HEAD')


class SuspendedBehindOurBackTest(StackTestCase):
    """A tenant changed by hand in the database, with no NOTIFY, is seen
    within the cache's lifetime (10 s)."""

    def test_a_tenant_suspended_in_psql_answers_404_within_the_ttl(self):
        t = self.stack.new_tenant('suspend')
        for _ in range(4):      # every worker caches it
            self.assertJson(self.stack.request(
                'GET', '/api/v1/agents', host=t.slug, token=t.token), 200)

        self.stack.psql("UPDATE public.tenants SET is_active = false "
                        "WHERE id = :'id'", id=t.id)
        deadline = time.monotonic() + 15
        statuses = []
        while time.monotonic() < deadline:
            resp = self.stack.request('GET', '/api/v1/agents', host=t.slug,
                                      token=t.token)
            statuses.append(resp.status)
            if statuses[-4:] == [404] * 4:
                break
            time.sleep(0.5)
        self.assertEqual(statuses[-4:], [404] * 4, statuses)


if __name__ == '__main__':
    crewtest.main()
