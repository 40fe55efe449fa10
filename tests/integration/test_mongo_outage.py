"""MongoDB down, MongoDB back, and MongoDB not configured.

Each class runs its own stack, because these tests stop its MongoDB
server (every test leaves it running again).  The local server keeps its
data in memory: after a restart it holds nothing, as a new, empty
MongoDB would.
"""

import time

import crewtest
import mongowire
from crewtest import StackTestCase, random_uuid, wait_for

DATABASE = 'crewd'
KINDS = ('execution_logs', 'chat_messages', 'audit_logs')


class OutageTestCase(StackTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant = cls.stack.new_tenant('outage')

    def setUp(self):
        if self.stack.mongo is None:
            self.stack.start_mongo()

    def tearDown(self):
        if self.stack.mongo is None:
            self.stack.start_mongo()

    def call(self, method, path, tenant=None, **kwargs):
        tenant = tenant or self.tenant
        return self.stack.request(method, path, host=tenant.slug,
                                  token=tenant.token, **kwargs)

    def new_execution(self):
        flow = self.assertJson(self.call('POST', '/api/v1/flows', json={
            'name': 'flow %s' % random_uuid(),
            'definition': {'nodes': [], 'edges': []}}), 201)
        return self.assertJson(self.call(
            'POST', '/api/v1/flows/%s/executions' % flow['id']), 202)['id']

    def pending(self, tenant_id):
        return self.stack.psql_value(
            "SELECT mongo_provisioned_at IS NULL FROM public.tenants"
            " WHERE id = :'id'", id=tenant_id) == 't'

    def collections(self):
        with mongowire.Client('127.0.0.1', self.stack.mongo_port) as c:
            return {entry['name']: entry['options']
                    for entry in c.list_collections(DATABASE)}

    def assertUnavailable(self, resp):
        self.assertProblem(resp, 503)
        retry = resp.headers.get('Retry-After')
        self.assertIsNotNone(retry, resp)
        self.assertTrue(retry.isdigit() and int(retry) > 0, retry)

    def assertProvisioned(self, tenant_id):
        collections = self.collections()
        for kind in KINDS:
            name = '%s_%s' % (kind, tenant_id)
            self.assertIn(name, collections)
            self.assertIn('$jsonSchema', collections[name]['validator'])


class OutageTest(OutageTestCase):

    def test_readyz_answers_200_and_reports_mongodb_down(self):
        self.stack.stop_mongo()
        body = self.assertJson(self.stack.request('GET', '/readyz'), 200)
        self.assertEqual(body, {'status': 'ready', 'postgresql': 'up',
                                'mongodb': 'down'})
        self.stack.start_mongo()

        def up():
            body = self.stack.request('GET', '/readyz').json()
            return body['mongodb'] == 'up'
        self.assertTrue(wait_for(up, 15, 0.2))

    def test_agents_are_created_while_mongodb_is_down(self):
        self.stack.stop_mongo()
        agent = self.assertJson(self.call('POST', '/api/v1/agents', json={
            'name': 'outage agent', 'role': 'r', 'goal': 'g'}), 201)
        page = self.assertJson(self.call('GET', '/api/v1/agents'), 200)
        self.assertIn(agent['id'], [a['id'] for a in page['items']])
        self.assertJson(self.call('GET', '/api/v1/agents/%s' % agent['id']),
                        200)

    def test_logs_and_chat_answer_503_with_retry_after(self):
        execution_id = self.new_execution()
        logs = '/api/v1/executions/%s/logs' % execution_id
        messages = '/api/v1/conversations/%s/messages' % random_uuid()
        self.stack.stop_mongo()
        self.assertUnavailable(self.call('POST', logs, json={
            'level': 'info', 'message': 'm'}))
        self.assertUnavailable(self.call('GET', logs))
        self.assertUnavailable(self.call('POST', messages, json={
            'role': 'user', 'content': 'hi'}))
        self.assertUnavailable(self.call('GET', messages))

    def test_answers_during_an_outage_do_not_wait(self):
        logs = '/api/v1/executions/%s/logs' % self.new_execution()
        self.stack.stop_mongo()
        waited = 0
        for _ in range(8):
            started = time.monotonic()
            self.assertUnavailable(self.call('GET', logs))
            if time.monotonic() - started > 0.5:
                waited += 1
        # Each worker waits for the driver once, learns MongoDB is down
        # and answers the next requests at once.
        self.assertLessEqual(waited, self.stack.workers)

    def test_bad_entries_still_answer_422_while_mongodb_is_down(self):
        logs = '/api/v1/executions/%s/logs' % self.new_execution()
        self.stack.stop_mongo()
        resp = self.call('POST', logs, json={'level': 'loud',
                                             'message': 'm'})
        self.assertProblem(resp, 422, fields=['/level'])

    def test_logs_are_written_again_once_mongodb_returns(self):
        execution_id = self.new_execution()
        logs = '/api/v1/executions/%s/logs' % execution_id
        self.stack.stop_mongo()
        self.assertUnavailable(self.call('POST', logs, json={
            'level': 'info', 'message': 'lost'}))
        self.stack.start_mongo()

        def written():
            resp = self.call('POST', logs, json={'level': 'info',
                                                 'message': 'kept'})
            if resp.status == 503:
                return None
            return resp
        resp = wait_for(written, 15, 0.5)
        self.assertIsNotNone(resp, 'no 201 within 15 s')
        self.assertJson(resp, 201)

        # Another worker may still be in its pause (Retry-After).
        def read():
            resp = self.call('GET', logs)
            return None if resp.status == 503 else resp
        page = self.assertJson(wait_for(read, 10, 0.5), 200)
        self.assertEqual([e['message'] for e in page['items']], ['kept'])

    def test_sign_up_during_an_outage_gets_its_collections_later(self):
        self.stack.stop_mongo()
        tenant = self.stack.new_tenant('during')
        self.assertTrue(self.pending(tenant.id))
        # The tenant works at once for everything but MongoDB.
        self.assertJson(self.call('POST', '/api/v1/agents', tenant=tenant,
                                  json={'name': 'a', 'role': 'r',
                                        'goal': 'g'}), 201)
        self.stack.start_mongo()

        # No request of the tenant is needed: the workers retry.
        self.assertTrue(wait_for(lambda: not self.pending(tenant.id), 15,
                                 0.2), 'still pending after 15 s')
        self.assertProvisioned(tenant.id)
        status = self.stack.crewctl('mongo', 'status').stdout
        self.assertIn('tenants without collections: 0', status)


class PendingTenantTest(OutageTestCase):
    """Workers that retry only once an hour: what makes the collections
    here is a request of the tenant, or crewctl."""

    stack_options = {'mongodb_provision_interval': 3600}

    def test_a_request_of_a_pending_tenant_makes_its_collections(self):
        self.stack.stop_mongo()
        tenant = self.stack.new_tenant('lazy')
        self.stack.start_mongo()
        self.assertTrue(self.pending(tenant.id))

        cid = random_uuid()
        path = '/api/v1/conversations/%s/messages' % cid

        def posted():
            resp = self.call('POST', path, tenant=tenant,
                             json={'role': 'user', 'content': 'hi'})
            return None if resp.status == 503 else resp
        resp = wait_for(posted, 15, 0.5)
        self.assertIsNotNone(resp, 'no answer but 503 within 15 s')
        self.assertJson(resp, 201)
        self.assertFalse(self.pending(tenant.id))
        self.assertProvisioned(tenant.id)

    def test_crewctl_provisions_the_pending_tenants(self):
        self.stack.stop_mongo()
        tenant = self.stack.new_tenant('cli')
        failed = self.stack.crewctl('mongo', 'provision', check=False)
        self.assertNotEqual(failed.returncode, 0)
        self.assertTrue(self.pending(tenant.id))
        self.stack.start_mongo()

        out = self.stack.crewctl('mongo', 'provision')
        self.assertIn('%s: collections made' % tenant.id, out.stdout)
        self.assertFalse(self.pending(tenant.id))
        self.assertProvisioned(tenant.id)

    def test_provision_all_remakes_what_a_new_mongodb_lacks(self):
        # A restarted local server has lost everything, marks or not.
        # (Not asked of audit_logs: the shipper may already have written
        # an entry into a bare one; provisioning adds its validator.)
        self.stack.stop_mongo()
        self.stack.start_mongo()
        self.assertNotIn('execution_logs_%s' % self.tenant.id,
                         self.collections())
        self.stack.crewctl('mongo', 'provision', '--all')
        self.assertProvisioned(self.tenant.id)


class NotConfiguredTest(StackTestCase):
    """No mongodb_uri: everything but MongoDB's endpoints works."""

    stack_options = {'mongo': False}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant = cls.stack.new_tenant('nomongo')

    def test_readyz_reports_mongodb_not_configured(self):
        body = self.assertJson(self.stack.request('GET', '/readyz'), 200)
        self.assertEqual(body['mongodb'], 'not configured')

    def test_messages_answer_503_without_retry_after(self):
        resp = self.stack.request(
            'GET', '/api/v1/conversations/%s/messages' % random_uuid(),
            host=self.tenant.slug, token=self.tenant.token)
        body = self.assertProblem(resp, 503)
        self.assertIsNone(resp.headers.get('Retry-After'))
        self.assertIn('not configured', body['detail'])

    def test_sign_up_works_and_leaves_the_tenant_pending(self):
        pending = self.stack.psql_value(
            "SELECT mongo_provisioned_at IS NULL FROM public.tenants"
            " WHERE id = :'id'", id=self.tenant.id)
        self.assertEqual(pending, 't')


if __name__ == '__main__':
    crewtest.main()
