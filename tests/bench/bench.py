"""The crewd benchmark: each case measured through nginx with wrk, beside
a reference measured in the same run (pgbench running the same SQL), so
that the figures are read as ratios (docs/performance.md).

Run it with scripts/bench [--quick] [--json FILE] [--cases 1,3].  It
starts a private stack (tests/integration/stack.py): PostgreSQL, crewd,
nginx, on free loopback ports, and stops it at the end.  It is not a
test: no figure fails anything."""

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'integration'))

import stack as stacklib                                  # noqa: E402

AGENT_COLUMNS = ('id, tenant_id, name, role, goal, backstory, '
                 'llm_provider_id, allow_delegation, "verbose", config, '
                 'created_at, updated_at, '
                 '(extract(epoch from updated_at) * 1000000)::bigint')
AGENTS_PER_TENANT = 50
CLOCK_TICKS = os.sysconf('SC_CLK_TCK')
CORES = os.cpu_count() or 1


# ---------------------------------------------------------------------
# CPU accounting: user + system time of process trees, read from /proc.
# ---------------------------------------------------------------------

def _stat(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    # fields[0] is field 3 (state); utime is field 14, cstime field 17.
    return {'ppid': int(fields[1]),
            'own': int(fields[11]) + int(fields[12]),
            'children': int(fields[13]) + int(fields[14])}


def _all_stats():
    stats = {}
    for name in os.listdir('/proc'):
        if name.isdigit():
            s = _stat(int(name))
            if s is not None:
                stats[int(name)] = s
    return stats


def tree_ticks(root, stats):
    """CPU ticks of root and everything below it, including children
    that already ended (their time is in their parent's cutime)."""
    if root not in stats:
        return 0
    total = stats[root]['own'] + stats[root]['children']
    for pid, s in stats.items():
        if s['ppid'] == root:
            total += tree_ticks(pid, stats)
    return total


class CpuMeter:
    """CPU of crewd, nginx and PostgreSQL over one measurement."""

    def __init__(self, stack):
        self.roots = {
            'crewd': stack.crewd.pid,
            'nginx': stack.nginx.pid,
            'postgres': postmaster_pid(stack),
        }

    def sample(self):
        stats = _all_stats()
        return {name: tree_ticks(pid, stats)
                for name, pid in self.roots.items()}

    @staticmethod
    def split(before, after, seconds, load_ticks):
        """{process: percent of one core} over seconds."""
        out = {name: 100.0 * (after[name] - before[name]) / CLOCK_TICKS /
               seconds for name in before}
        out['load'] = 100.0 * load_ticks / CLOCK_TICKS / seconds
        return out


def postmaster_pid(stack):
    with open(os.path.join(stack.pg_data, 'postmaster.pid')) as f:
        return int(f.readline())


def run_measured(cmd, meter, env=None):
    """Runs the load generator cmd; returns its output, the seconds it
    took and the CPU samples before and after."""
    before = meter.sample()
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    out, err = proc.communicate()
    seconds = time.monotonic() - started
    after = meter.sample()
    if proc.returncode != 0:
        raise RuntimeError('%s failed: %s%s' % (cmd[0], out, err))
    return out + err, seconds, before, after


class LoadUsage:
    """The load generators' CPU, from RUSAGE_CHILDREN deltas."""

    def __init__(self):
        self.last = self._now()

    @staticmethod
    def _now():
        u = resource.getrusage(resource.RUSAGE_CHILDREN)
        return u.ru_utime + u.ru_stime

    def take(self):
        now = self._now()
        used, self.last = now - self.last, now
        return used * CLOCK_TICKS


# ---------------------------------------------------------------------
# Tokens, minted the way crewd signs them (lib/token.c), so seeding a
# thousand tenants costs no Argon2id.
# ---------------------------------------------------------------------

def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


def token_secret(path):
    with open(path, 'rb') as f:
        data = f.read()
    text = data.strip()
    if re.fullmatch(rb'[0-9a-fA-F]+', text):
        return bytes.fromhex(text.decode())
    return data


def mint_token(secret, issuer, tenant_id, user_id, role='admin'):
    now = int(time.time())
    header = _b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())
    claims = {'iss': issuer, 'aud': tenant_id, 'sub': user_id,
              'role': role, 'ver': 0, 'iat': now, 'exp': now + 3600,
              'jti': str(uuid.uuid4())}
    payload = _b64(json.dumps(claims).encode())
    signature = hmac.new(secret, ('%s.%s' % (header, payload)).encode(),
                         hashlib.sha256).digest()
    return '%s.%s.%s' % (header, payload, _b64(signature))


# ---------------------------------------------------------------------
# Seeding.
# ---------------------------------------------------------------------

class Seed:
    """Tenants made as sign-up makes them (crewd_create_tenant), each
    with an admin and AGENTS_PER_TENANT agents, and a table the
    pgbench scripts look tenants up in (bench_tenants, number -> schema,
    id), readable by crewd's login role."""

    def __init__(self, stack, password_hash):
        self.stack = stack
        self.password_hash = password_hash
        self.tenants = []       # dicts: n, slug, id, schema, user, agent
        self.stack.psql(
            'CREATE TABLE IF NOT EXISTS public.bench_tenants ('
            ' n integer PRIMARY KEY, slug text, id uuid, schema text,'
            ' user_id uuid, agent_id uuid);'
            'GRANT SELECT ON public.bench_tenants TO crewd, crewd_tenant')

    def grow(self, count):
        """Makes tenants until there are count."""
        while len(self.tenants) < count:
            chunk = min(100, count - len(self.tenants))
            self._make(chunk)

    def _make(self, chunk):
        start = len(self.tenants) + 1
        rows = []
        for n in range(start, start + chunk):
            rows.append({'n': n, 'slug': 'bench-%04d' % n,
                         'id': str(uuid.uuid4()),
                         'schema': 'tenant_%s' % os.urandom(8).hex()})
        values = ', '.join("(%d, '%s', '%s'::uuid, '%s')" % (
            r['n'], r['slug'], r['id'], r['schema']) for r in rows)
        self.stack.psql(
            "SELECT public.crewd_create_tenant(i, 'Bench ' || s, s, d)"
            ' FROM (VALUES %s) v(n, s, i, d);'
            'INSERT INTO public.users (tenant_id, email, password_hash,'
            " role) SELECT i, 'admin@' || s || '.test', :'hash', 'admin'"
            ' FROM (VALUES %s) v(n, s, i, d);'
            'INSERT INTO public.bench_tenants (n, slug, id, schema)'
            ' SELECT n, s, i, d FROM (VALUES %s) v(n, s, i, d);'
            % (values, values, values), hash=self.password_hash)
        self.stack.psql(
            'DO $$ DECLARE t record; BEGIN'
            ' FOR t IN SELECT * FROM public.bench_tenants'
            '  WHERE n BETWEEN %d AND %d LOOP'
            '  EXECUTE format(\'INSERT INTO %%I.agents (tenant_id, name,'
            ' role, goal, created_at) SELECT $1, \'\'agent \'\' || g,'
            ' \'\'Researcher\'\', \'\'Find the facts\'\','
            ' now() - g * interval \'\'1 second\'\''
            ' FROM generate_series(1, %d) g\', t.schema) USING t.id;'
            ' END LOOP; END $$;'
            'UPDATE public.bench_tenants b SET'
            ' user_id = (SELECT u.id FROM public.users u'
            '  WHERE u.tenant_id = b.id)'
            ' WHERE n BETWEEN %d AND %d'
            % (start, start + chunk - 1, AGENTS_PER_TENANT, start,
               start + chunk - 1))
        for r in rows:
            r['user'] = self.stack.psql_value(
                "SELECT user_id FROM public.bench_tenants WHERE n = %d"
                % r['n'])
            r['agent'] = self.stack.psql_value(
                'SELECT id FROM :"s".agents ORDER BY created_at DESC'
                ' LIMIT 1', s=r['schema'])
            self.stack.psql("UPDATE public.bench_tenants SET agent_id ="
                            " '%s' WHERE n = %d" % (r['agent'], r['n']))
        self.tenants.extend(rows)


# ---------------------------------------------------------------------
# wrk and pgbench.
# ---------------------------------------------------------------------

WRK_SCRIPT = r'''
-- Generated by tests/bench/bench.py: each request for a random tenant.
local targets = {}
local method, path_kind, body = "%(method)s", "%(path)s", [[%(body)s]]

init = function(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  for line in io.lines("%(targets)s") do
    local host, token, agent = line:match("(%%S+) (%%S+) (%%S+)")
    targets[#targets + 1] = {host = host, token = token, agent = agent}
  end
end

request = function()
  local t = targets[math.random(#targets)]
  local headers = {Host = t.host, Authorization = "Bearer " .. t.token,
                   ["Content-Type"] = "application/json"}
  local path = path_kind
  if path:find("{agent}") then path = path:gsub("{agent}", t.agent) end
  if method == "PATCH" then headers["If-Match"] = "*" end
  if method == "GET" then return wrk.format(method, path, headers) end
  return wrk.format(method, path, headers, body)
end
'''


def parse_wrk(out):
    rps = float(re.search(r'Requests/sec:\s+([\d.]+)', out).group(1))

    def latency(pct):
        m = re.search(r'^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$' % pct, out, re.M)
        if not m:
            return None
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == 'us' else (
            value * 1000 if unit == 's' else value)

    errors = 0
    m = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
    if m:
        errors = int(m.group(1))
    m = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+),'
                  r' timeout (\d+)', out)
    if m:
        errors += sum(int(x) for x in m.groups())
    total = int(re.search(r'(\d+) requests in', out).group(1))
    return {'rate': rps, 'p50': latency(50), 'p99': latency(99),
            'errors': errors, 'requests': total}


def mean_result(runs):
    """One result from several runs of the same thing: the mean of each
    figure (rate, p50, p99, CPU split), the sum of errors and requests."""
    def mean(values):
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else None

    out = {}
    for key in ('rate', 'p50', 'p99'):
        out[key] = mean([r.get(key) for r in runs])
    for key in ('errors', 'requests'):
        out[key] = sum(r.get(key, 0) for r in runs)
    out['cpu'] = {part: mean([r['cpu'][part] for r in runs])
                  for part in runs[0]['cpu']}
    return out


def parse_pgbench(out):
    tps = float(re.search(r'tps = ([\d.]+) \(without initial', out).group(1))
    avg = float(re.search(r'latency average = ([\d.]+) ms', out).group(1))
    return {'rate': tps, 'p50': avg, 'p99': None}


class Bench:

    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.duration = 4 if args.quick else 12
        self.rounds = 1 if args.quick else 2
        self.results = []
        self.dir = tempfile.mkdtemp(prefix='crewd-bench-')
        self.stack = None
        self.load = LoadUsage()

    # -- the stack -------------------------------------------------------

    def start(self):
        self.stack = stacklib.Stack(
            workers=self.args.workers, mongo=False,
            # The configured cost of production, for the login case.
            password_ops_limit=2, password_mem_limit=64 << 20,
            log_level='warn')
        self.stack.start()
        self.meter = CpuMeter(self.stack)
        signup = self.stack.new_tenant('seed')
        self.password = signup.password
        self.login_slug = signup.slug
        password_hash = self.stack.psql_value(
            "SELECT password_hash FROM public.users WHERE email = :'e'",
            e=signup.email)
        self.seed = Seed(self.stack, password_hash)
        self.secret = token_secret(self.stack.conf['token_secret_file'])
        self.issuer = self.stack.conf.get('token_issuer', 'crewd')

    def targets_file(self, count):
        path = os.path.join(self.dir, 'targets-%d' % count)
        with open(path, 'w') as f:
            for t in self.seed.tenants[:count]:
                f.write('%s.%s %s %s\n' % (
                    t['slug'], stacklib.BASE_DOMAIN,
                    mint_token(self.secret, self.issuer, t['id'], t['user']),
                    t['agent']))
        return path

    def wrk(self, method, path, tenants, body='', connections=32,
            duration=None):
        script = os.path.join(self.dir, 'case.lua')
        with open(script, 'w') as f:
            f.write(WRK_SCRIPT % {'method': method, 'path': path,
                                  'body': body,
                                  'targets': self.targets_file(tenants)})
        cmd = ['wrk', '-t2', '-c%d' % connections,
               '-d%ds' % (duration or self.duration), '--latency',
               '-s', script, 'https://127.0.0.1:%d' % self.stack.https_port]
        self.load.take()
        out, seconds, before, after = run_measured(cmd, self.meter)
        result = parse_wrk(out)
        result['cpu'] = CpuMeter.split(before, after, seconds,
                                       self.load.take())
        return result

    def pgbench(self, sql, tenants, clients=8, duration=None,
                transactions=None):
        script = os.path.join(self.dir, 'case.sql')
        with open(script, 'w') as f:
            f.write('\\set n random(1, %d)\n' % tenants + sql)
        cmd = [os.path.join(os.path.dirname(self.stack.tools['psql']),
                            'pgbench'),
               '-n', '-h', self.stack.pg_sock,
               '-p', str(self.stack.pg_port), '-U', 'crewd',
               '-c', str(clients), '-j', '2', '-M', 'prepared',
               '-f', script, 'crewd']
        if transactions:
            cmd[1:1] = ['-t', str(transactions)]
        else:
            cmd[1:1] = ['-T', str(duration or self.duration)]
        self.load.take()
        out, seconds, before, after = run_measured(cmd, self.meter)
        result = parse_pgbench(out)
        result['cpu'] = CpuMeter.split(before, after, seconds,
                                       self.load.take())
        return result

    # -- the cases -------------------------------------------------------

    SWITCH = ("SELECT set_config('search_path', schema, true),"
              " set_config('crewd.tenant_id', id::text, true),"
              " set_config('role', schema, true)"
              " FROM public.bench_tenants WHERE n = :n;\n")

    def record(self, case, name, measured, reference=None, unit='req/s',
               note=''):
        row = {'case': case, 'name': name, 'unit': unit,
               'figure': measured.get('rate') if measured else None,
               'reference': reference.get('rate') if reference else None,
               'p50_ms': measured.get('p50') if measured else None,
               'p99_ms': measured.get('p99') if measured else None,
               'errors': measured.get('errors', 0) if measured else 0,
               'cpu': measured.get('cpu') if measured else None,
               'reference_cpu': reference.get('cpu') if reference else None,
               'note': note}
        if row['figure'] is not None and row['reference']:
            row['ratio'] = row['figure'] / row['reference']
        else:
            row['ratio'] = None
        self.results.append(row)
        print_row(row)
        sys.stdout.flush()

    def paired(self, measure, reference):
        """Runs measure and reference alternately, self.rounds times
        each, and returns the mean of each: on two shared cores one run
        of either moves by 10-20 % from the next."""
        runs = ([], [])
        for _ in range(self.rounds):
            runs[0].append(measure())
            runs[1].append(reference())
        return tuple(mean_result(r) for r in runs)

    def backend_memory(self):
        """The private memory (RssAnon, KiB) of each PostgreSQL backend
        serving crewd: its caches of tables and plans."""
        sizes = []
        for pid in os.listdir('/proc'):
            try:
                with open('/proc/%s/cmdline' % pid, 'rb') as f:
                    if not f.read().startswith(b'postgres: crewd '):
                        continue
                with open('/proc/%s/status' % pid) as f:
                    for line in f:
                        if line.startswith('RssAnon:'):
                            sizes.append(int(line.split()[1]))
            except OSError:
                continue
        return sizes

    def case_list(self, case, tenants):
        self.seed.grow(tenants)
        # A first pass over the tenants: each worker's connection meets
        # each tenant once (its tables' catalog entries, its statements'
        # plans), a cost paid once per connection, not per request.  The
        # figure is the steady state after it; the note gives the pass.
        first = self.wrk('GET', '/api/v1/agents?limit=20', tenants,
                         duration=2 if self.quick else 5)
        measured, reference = self.paired(
            lambda: self.wrk('GET', '/api/v1/agents?limit=20', tenants),
            lambda: self.pgbench(
                'BEGIN;\n' + self.SWITCH +
                'SELECT %s FROM agents WHERE true'
                ' ORDER BY created_at DESC, id DESC LIMIT 21;\n'
                'COMMIT;\n' % AGENT_COLUMNS, tenants))
        memory = self.backend_memory()
        self.record(case, 'GET /agents, %d tenants' % tenants, measured,
                    reference, note='first pass %.0f req/s; PostgreSQL'
                    ' backend %d MiB' % (first['rate'],
                                         max(memory or [0]) // 1024))
        return measured

    def case_create(self):
        self.seed.grow(100)
        body = json.dumps({'name': 'bench agent', 'role': 'Researcher',
                           'goal': 'Find the facts'})
        measured, reference = self.paired(lambda: self.wrk(
            'POST', '/api/v1/agents', 100, body=body), lambda: self.pgbench(
            'BEGIN;\n' + self.SWITCH +
            "INSERT INTO agents (tenant_id, name, role, goal)"
            " VALUES (current_setting('crewd.tenant_id')::uuid,"
            " 'bench agent', 'Researcher', 'Find the facts')"
            ' RETURNING %s;\n'
            'INSERT INTO audit_outbox (id, user_id, action, resource_type,'
            " resource_id, changes) VALUES (gen_random_uuid(),"
            " gen_random_uuid(), 'create', 'agent', gen_random_uuid(),"
            ' \'{"before": null, "after": {"name": "bench agent"}}\');\n'
            'COMMIT;\n' % AGENT_COLUMNS, 100))
        self.record(3, 'POST /agents (+ audit entry)', measured, reference)

    def case_get_patch(self):
        self.seed.grow(100)
        measured, reference = self.paired(lambda: self.wrk(
            'GET', '/api/v1/agents/{agent}', 100), lambda: self.pgbench(
            'BEGIN;\n' + self.SWITCH +
            'SELECT %s FROM agents WHERE id = (SELECT agent_id FROM'
            ' public.bench_tenants WHERE n = :n);\nCOMMIT;\n'
            % AGENT_COLUMNS, 100))
        self.record(4, 'GET /agents/{id}', measured, reference)

        body = json.dumps({'goal': 'Find more facts'})
        measured, reference = self.paired(lambda: self.wrk(
            'PATCH', '/api/v1/agents/{agent}', 100, body=body),
            lambda: self.pgbench(
            'BEGIN;\n' + self.SWITCH +
            'SELECT 1 FROM agents WHERE id = (SELECT agent_id FROM'
            ' public.bench_tenants WHERE n = :n) FOR UPDATE;\n'
            "UPDATE agents SET goal = 'Find more facts',"
            ' updated_at = now() WHERE id = (SELECT agent_id FROM'
            ' public.bench_tenants WHERE n = :n) RETURNING %s;\n'
            'INSERT INTO audit_outbox (id, user_id, action, resource_type,'
            " resource_id, changes) VALUES (gen_random_uuid(),"
            " gen_random_uuid(), 'update', 'agent', gen_random_uuid(),"
            ' \'{"before": null, "after": null}\');\n'
            'COMMIT;\n' % AGENT_COLUMNS, 100))
        self.record(4, 'PATCH /agents/{id} with If-Match', measured,
                    reference)

    def case_login(self):
        body = json.dumps({'email': 'admin@%s.test' % self.login_slug,
                           'password': self.password})
        script = os.path.join(self.dir, 'login.lua')
        with open(script, 'w') as f:
            f.write('wrk.method = "POST"\nwrk.body = [[%s]]\n'
                    'wrk.headers["Content-Type"] = "application/json"\n'
                    'wrk.headers["Host"] = "%s.%s"\n'
                    % (body, self.login_slug, stacklib.BASE_DOMAIN))
        cmd = ['wrk', '-t2', '-c%d' % self.args.workers,
               '-d%ds' % self.duration, '--latency', '-s', script,
               'https://127.0.0.1:%d/api/v1/auth/login'
               % self.stack.https_port]
        self.load.take()
        out, seconds, before, after = run_measured(cmd, self.meter)
        measured = parse_wrk(out)
        measured['cpu'] = CpuMeter.split(before, after, seconds,
                                         self.load.take())
        measured['rate'] = measured['rate'] / CORES
        self.record(5, 'login (Argon2id, ops 2, 64 MiB), per core',
                    measured, unit='logins/s/core',
                    note='no reference: the hash is the cost')

    def case_provision(self, existing):
        """Tenant provisioning with about `existing` tenants in place
        (the label gives the exact count): run() calls it before the
        other cases have seeded more, and again after."""
        self.seed.grow(existing)
        count = 10 if self.quick else 20
        tenants = int(self.stack.psql_value(
            'SELECT count(*) FROM public.tenants'))
        sql = ("SELECT public.crewd_create_tenant(gen_random_uuid(),"
               " 'p', 'p-' || md5(random()::text), 'tenant_' ||"
               " substr(md5(random()::text), 1, 16));\n")
        script = os.path.join(self.dir, 'provision.sql')
        with open(script, 'w') as f:
            f.write(sql)
        # Each tenant's time (pgbench's log: microseconds in the third
        # field).  The figure is the median: the first tenant of a fresh
        # connection also pays for its caches (the functions compiled,
        # the catalog read), shown apart in the note.
        prefix = os.path.join(self.dir, 'provision-%d' % tenants)
        cmd = [os.path.join(os.path.dirname(self.stack.tools['psql']),
                            'pgbench'),
               '-n', '-t', str(count), '-h', self.stack.pg_sock,
               '-p', str(self.stack.pg_port), '-U', 'crewd',
               '-c', '1', '-l', '--log-prefix', prefix, '-f', script,
               'crewd']
        subprocess.run(cmd, capture_output=True, text=True, check=True)
        times = []
        for name in sorted(os.listdir(self.dir)):
            if name.startswith(os.path.basename(prefix) + '.'):
                with open(os.path.join(self.dir, name)) as f:
                    times += [int(line.split()[2]) / 1000.0 for line in f]
        ordered = sorted(times)
        median = ordered[len(ordered) // 2]
        self.record(6, 'tenant provisioning at %d tenants' % tenants,
                    {'rate': median, 'p50': median,
                     'p99': ordered[-1]}, unit='ms/tenant',
                    note='median of %d; the first %.1f ms, the mean'
                    ' %.1f ms; everything but the password hash'
                    % (len(times), times[0], sum(times) / len(times)))

    def case_migrate(self):
        tenants = 100 if self.quick else 1000
        self.seed.grow(tenants)
        source = os.path.join(self.dir, 'migrations')
        shutil.copytree(os.path.join(stacklib.SRCDIR, 'sql', 'migrations'),
                        source)
        newest = max(int(n[:4]) for n in os.listdir(source))
        base = os.path.join(source, '%04d_bench_note' % (newest + 1))
        with open(base + '.up.sql', 'w') as f:
            f.write('ALTER TABLE agents ADD COLUMN bench_note text;\n')
        with open(base + '.down.sql', 'w') as f:
            f.write('ALTER TABLE agents DROP COLUMN bench_note;\n')
        schemas = int(self.stack.psql_value(
            'SELECT count(*) FROM public.tenants'))
        for label in ('with work', 'nothing to do'):
            started = time.monotonic()
            self.stack.crewctl('migrate', '--source', source, '--jobs', '2')
            seconds = time.monotonic() - started
            self.record(7, 'crewctl migrate, %d schemas, %s' % (
                schemas, label), {'rate': seconds}, unit='s')
        self.stack.crewctl('migrate', '--source', source, '--to',
                           str(newest), '--jobs', '2')

    def worker_rss(self):
        _, workers = self.stack.crewd_pids()
        rss = []
        for pid in workers:
            with open('/proc/%d/status' % pid) as f:
                for line in f:
                    if line.startswith('VmRSS:'):
                        rss.append(int(line.split()[1]))
        return rss

    def case_memory(self):
        total = 20000 if self.quick else 100000
        self.seed.grow(100)
        # 1,000 requests, then the rest: the RSS after each.
        self.wrk('GET', '/api/v1/agents?limit=20', 100, connections=8,
                 duration=1)
        early = self.worker_rss()
        served = 0
        while served < total:
            served += self.wrk('GET', '/api/v1/agents?limit=20', 100,
                               connections=16)['requests']
        late = self.worker_rss()
        growth = max(l - e for e, l in zip(early, late))
        self.record(8, 'worker RSS after %d requests vs after ~1,000'
                    % served, {'rate': sum(late) / len(late),
                               'p50': None},
                    reference={'rate': sum(early) / len(early)},
                    unit='KiB/worker',
                    note='largest growth of one worker: %d KiB' % growth)

    def run(self):
        cases = set(int(c) for c in self.args.cases.split(','))
        self.start()
        try:
            print_header()
            one = None
            if 6 in cases:
                self.case_provision(10)
            if 1 in cases:
                one = self.case_list(1, 100)
            if 6 in cases:
                self.case_provision(100)
            if 3 in cases:
                self.case_create()
            if 4 in cases:
                self.case_get_patch()
            if 5 in cases:
                self.case_login()
            if 2 in cases:
                many = self.case_list(2, 300 if self.quick else 1000)
                if one:
                    self.results[-1]['note'] = (
                        '%.0f %% of case 1; %s' % (
                            100 * many['rate'] / one['rate'],
                            self.results[-1]['note']))
            if 6 in cases:
                self.case_provision(300 if self.quick else 1000)
            if 7 in cases:
                self.case_migrate()
            if 8 in cases:
                self.case_memory()
        finally:
            self.stack.close()
            shutil.rmtree(self.dir, ignore_errors=True)
        return self.results


# ---------------------------------------------------------------------
# The table.
# ---------------------------------------------------------------------

def fmt(value, digits=0):
    if value is None:
        return '-'
    return '{:,.{}f}'.format(value, digits)


def print_header():
    print('%-4s %-44s %10s %10s %6s %7s %7s  %s' % (
        'case', 'what', 'figure', 'reference', 'ratio', 'p50 ms', 'p99 ms',
        'CPU % of one core: crewd/nginx/postgres/load'))


def print_row(row):
    cpu = row['cpu']
    split = ('%3.0f/%3.0f/%3.0f/%3.0f' % (
        cpu['crewd'], cpu['nginx'], cpu['postgres'], cpu['load'])
             if cpu else '')
    digits = 2 if row['unit'] in ('s', 'ms/tenant', 'logins/s/core') else 0
    print('%-4s %-44s %10s %10s %6s %7s %7s  %s %s' % (
        row['case'], row['name'][:44], fmt(row['figure'], digits),
        fmt(row['reference'], digits),
        fmt(row['ratio'], 2), fmt(row['p50_ms'], 2), fmt(row['p99_ms'], 2),
        split, ('[%s] %s' % (row['unit'], row['note'])).rstrip()))
    if row['errors']:
        print('     ^ %d requests failed or answered an error' %
              row['errors'])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='shorter runs and fewer tenants (under 2 min)')
    parser.add_argument('--json', default='bench-results.json',
                        help='where to write the table as JSON')
    parser.add_argument('--cases', default='1,2,3,4,5,6,7,8')
    parser.add_argument('--workers', type=int, default=4,
                        help="crewd's workers (default 4)")
    args = parser.parse_args()

    started = time.monotonic()
    results = Bench(args).run()
    elapsed = time.monotonic() - started
    with open(args.json, 'w') as f:
        json.dump({'quick': args.quick, 'cores': CORES,
                   'workers': args.workers, 'seconds': round(elapsed, 1),
                   'cases': results}, f, indent=2)
    print('\n%d rows in %.0f s; JSON in %s' % (len(results), elapsed,
                                               args.json))


if __name__ == '__main__':
    main()
