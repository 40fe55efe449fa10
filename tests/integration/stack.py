"""The whole crewd stack, private to one test module.

Stack() starts, in a fresh folder under /tmp:

  * a PostgreSQL cluster of its own on a unix socket and a free port,
    with a login role and database "crewd";
  * the MongoDB-protocol server of the local set-up (CongoServer, see
    docs/mongodb.md) on a free port of 127.0.0.1, installed once by
    scripts/mongo-server-install into a cache folder (mongo=False leaves
    MongoDB unconfigured; a mongodb_uri= key uses that server instead);
  * crewd (master and prefork workers) on a unix socket, configured for
    speed (cheap Argon2 parameters), with its token secret and master key
    made by crewctl, its stderr in crewd.log;
  * nginx from the project's template, with a self-signed certificate,
    on free ports of 127.0.0.1 and login and sign-up rate limits too
    high to matter.

Everything listens on 127.0.0.1 or on unix sockets, and everything is
stopped and removed by close() (CREWD_TEST_KEEP=1 keeps the folder).
Other local users reach neither socket: PostgreSQL's (trust
authentication) is in a folder of mode 0700 of the user it runs as, and
crewd's in a folder that only crewd's user and nginx's workers may enter.

A sanitizer build (./configure --enable-sanitizers) reports into a
folder of its own (see sanitizer_options()); close() raises
SanitizerReport, showing the reports, when crewd or crewctl made any
while the module ran, so a finding fails the module.

Requests go to nginx over TLS: the socket is opened to 127.0.0.1 and the
name of the virtual host is sent as SNI and Host by hand, because the
system resolver does not map *.localhost to loopback.
"""

import atexit
import ctypes
import email.message
import glob
import grp
import http.client
import json as jsonlib
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get('CREWD_SRCDIR') or os.path.dirname(
    os.path.dirname(HERE))
BUILDDIR = os.environ.get('CREWD_BUILDDIR') or SRCDIR
BASE_DOMAIN = 'localhost'
DEFAULT_PASSWORD = 'correct horse battery staple'


class StackError(Exception):
    """The stack could not be started or operated."""


class Unavailable(StackError):
    """A tool the stack needs is not installed or not built."""


# ---------------------------------------------------------------------
# Finding the tools.
# ---------------------------------------------------------------------

def _pg_bindir():
    env = os.environ.get('CREWD_PG_BINDIR')
    if env:
        return env
    try:
        out = subprocess.run(['pg_config', '--bindir'], capture_output=True,
                             text=True, check=True).stdout.strip()
        if os.access(os.path.join(out, 'initdb'), os.X_OK):
            return out
    except (OSError, subprocess.CalledProcessError):
        pass

    def version(path):
        m = re.search(r'/postgresql/(\d+)/', path)
        return int(m.group(1)) if m else 0

    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'),
                   key=version)
    return os.path.dirname(found[-1]) if found else None


def mongo_server_cache():
    """Where scripts/mongo-server-install keeps the MongoDB-protocol
    server: $CREWD_MONGO_SERVER_CACHE, else .cache/mongo-server in the
    source tree, else (a read-only tree, as in make distcheck)
    ~/.cache/crewd/mongo-server."""
    env = os.environ.get('CREWD_MONGO_SERVER_CACHE')
    if env:
        return env
    in_tree = os.path.join(SRCDIR, '.cache', 'mongo-server')
    if os.path.isdir(in_tree) and os.access(in_tree, os.W_OK):
        return in_tree
    if os.access(SRCDIR, os.W_OK):
        return in_tree
    return os.path.join(os.path.expanduser('~'), '.cache', 'crewd',
                        'mongo-server')


def find_tools():
    """Returns a dict of the programs the stack runs, or raises
    Unavailable naming what is missing."""
    missing = []
    tools = {
        'crewd': os.path.join(BUILDDIR, 'fcgi', 'crewd'),
        'crewctl': os.path.join(BUILDDIR, 'crewctl', 'crewctl'),
        'render': os.path.join(SRCDIR, 'nginx', 'render-conf'),
        'template': os.path.join(SRCDIR, 'nginx', 'crewd.conf.template'),
        'params': os.path.join(SRCDIR, 'nginx', 'crewd_fastcgi_params'),
        'mongo_install': os.path.join(SRCDIR, 'scripts',
                                      'mongo-server-install'),
        'mongo_server': os.path.join(SRCDIR, 'scripts', 'mongo-server.mjs'),
    }
    for key in ('crewd', 'crewctl'):
        if not os.access(tools[key], os.X_OK):
            missing.append('%s (not built)' % tools[key])
    for key in ('render', 'template', 'params', 'mongo_install',
                'mongo_server'):
        if not os.path.isfile(tools[key]):
            missing.append(tools[key])

    node = shutil.which('node') or shutil.which('nodejs')
    if node:
        tools['node'] = node
    else:
        missing.append('node (Debian package nodejs)')

    bindir = _pg_bindir()
    for prog in ('initdb', 'pg_ctl', 'psql'):
        path = os.path.join(bindir, prog) if bindir else None
        if path and os.access(path, os.X_OK):
            tools[prog] = path
        else:
            missing.append('%s (Debian package postgresql)' % prog)

    for prog, package in (('nginx', 'nginx-light'), ('openssl', 'openssl')):
        path = shutil.which(prog) or shutil.which(prog, path='/usr/sbin')
        if path:
            tools[prog] = path
        else:
            missing.append('%s (Debian package %s)' % (prog, package))

    if os.geteuid() == 0:
        try:
            pwd.getpwnam('postgres')
        except KeyError:
            missing.append('the postgres user (Debian package postgresql)')
        if not shutil.which('runuser'):
            missing.append('runuser (Debian package util-linux)')

    if missing:
        raise Unavailable('missing: ' + ', '.join(missing))
    return tools


def nginx_worker_user():
    """(user, group) of nginx's workers when the tests run as root; the
    same choice as render-conf's."""
    for user, group in (('www-data', 'www-data'), ('nobody', 'nogroup')):
        try:
            pwd.getpwnam(user)
            grp.getgrnam(group)
            return user, group
        except KeyError:
            continue
    raise Unavailable('no www-data or nobody user for nginx\'s workers')


def free_port():
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _die_with_parent():
    # Runs in the child before exec: if the test process dies without
    # cleaning up, the kernel sends SIGTERM to what it started.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)       # PR_SET_PDEATHSIG
    except OSError:
        pass


def _tail(path, lines=40):
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as e:
        return '(%s)' % e
    text = data.decode('utf-8', 'replace').splitlines()
    return '\n'.join(text[-lines:])


def _process_state(pid):
    """(state letter, parent pid) of a process, or None when it is gone."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(')') + 2:].split()
    return fields[0], int(fields[1])


def pid_alive(pid):
    state = _process_state(pid)
    return state is not None and state[0] not in ('Z', 'X')


def children_of(ppid):
    """Pids of the live children of ppid, sorted."""
    pids = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        state = _process_state(int(entry))
        if state and state[1] == ppid and state[0] not in ('Z', 'X'):
            pids.append(int(entry))
    return sorted(pids)


def process_name(pid):
    """The kernel's name of a process (its comm), or None when gone."""
    try:
        with open('/proc/%d/comm' % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def cpu_ticks(pid):
    """User and system CPU time of a process in clock ticks; 0 when it
    is gone."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            stat = f.read()
    except OSError:
        return 0
    fields = stat[stat.rindex(')') + 2:].split()
    return int(fields[11]) + int(fields[12])


def process_status(pid):
    """The fields of /proc/PID/status as a dict of strings (VmPeak,
    VmHWM, SigIgn, ...); empty when the process is gone."""
    try:
        with open('/proc/%d/status' % pid) as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    return dict((key, value.strip()) for key, _, value in
                (line.partition(':') for line in lines))


# What crewd's audit shipper calls itself; its workers keep "crewd".
SHIPPER_NAME = 'crewd-shipper'
WATCH_NAME = 'crewd-watch'


def wait_for(predicate, timeout, interval=0.05):
    """Calls predicate until it returns something true or timeout seconds
    pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# ---------------------------------------------------------------------
# Sanitizer reports.
# ---------------------------------------------------------------------

class SanitizerReport(StackError):
    """AddressSanitizer, LeakSanitizer or UndefinedBehaviorSanitizer
    reported a finding in crewd or crewctl."""


# The first line of a report: "==PID==ERROR: AddressSanitizer: ...",
# "==PID==ERROR: LeakSanitizer: ...", "FILE:LINE:COL: runtime error: ..."
# (UndefinedBehaviorSanitizer), each at the start of a line, where no
# text a client sent can stand (crewd's log lines start with the time).
SANITIZER_REPORT_RE = re.compile(
    r'^(==\d+==ERROR: (AddressSanitizer|LeakSanitizer)'
    r'|\S+:\d+(:\d+)?: runtime error: )', re.M)

_sanitizer_dir = None
_reported = set()


def _merge_options(current, options):
    """A sanitizer option string: current, then options over it."""
    merged = [item for item in (current or '').split(':')
              if item and item.split('=')[0] not in options]
    merged += ['%s=%s' % item for item in options.items()]
    return ':'.join(merged)


def sanitizer_options():
    """Points the sanitizers of every crewd and crewctl this process
    starts (through the environment, which they inherit, whoever starts
    them) at one report folder, and returns it.  Each process writes
    its reports to a file of its own (log_path adds the pid), so nothing
    is lost when a worker's stderr is busy or a test reads crewctl's.
    LeakSanitizer checks each process as it exits: a worker after
    SIGTERM, crewctl after each command.  The options are harmless for
    a build without sanitizers."""
    global _sanitizer_dir
    if _sanitizer_dir is None:
        _sanitizer_dir = tempfile.mkdtemp(prefix='crewd-sanitizer-',
                                          dir='/tmp')
        os.chmod(_sanitizer_dir, 0o755)
        os.environ['ASAN_OPTIONS'] = _merge_options(
            os.environ.get('ASAN_OPTIONS'), {
                'log_path': os.path.join(_sanitizer_dir, 'asan'),
                'detect_leaks': '1',
                'halt_on_error': '1',
            })
        os.environ['UBSAN_OPTIONS'] = _merge_options(
            os.environ.get('UBSAN_OPTIONS'), {
                'log_path': os.path.join(_sanitizer_dir, 'ubsan'),
                'halt_on_error': '1',
                'print_stacktrace': '1',
            })
        atexit.register(_remove_sanitizer_dir)
    return _sanitizer_dir


def _remove_sanitizer_dir():
    # Reports were shown when found; CREWD_TEST_KEEP=1 keeps them.
    if _sanitizer_dir is not None and \
            os.environ.get('CREWD_TEST_KEEP') != '1':
        shutil.rmtree(_sanitizer_dir, ignore_errors=True)


def sanitizer_findings(*texts):
    """The reports in the folder not shown before, and the texts (a
    log, a program's output) that hold a report, as one string; '' when
    there is none."""
    found = []
    if _sanitizer_dir is not None:
        for path in sorted(glob.glob(os.path.join(_sanitizer_dir, '*'))):
            if path in _reported:
                continue
            _reported.add(path)
            found.append('==== %s\n%s' % (path, _tail(path, 200)))
    for name, text in texts:
        match = SANITIZER_REPORT_RE.search(text)
        if match:
            lines = text[match.start():].splitlines()
            found.append('==== %s\n%s' % (name, '\n'.join(lines[:200])))
    return '\n'.join(found)


# ---------------------------------------------------------------------
# HTTP.
# ---------------------------------------------------------------------

class Response:
    """One HTTP response: status, headers (case-insensitive), body."""

    def __init__(self, method, path, host, status, reason, headers, body):
        self.method = method
        self.path = path
        self.host = host
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode('utf-8', 'replace')

    @property
    def media_type(self):
        value = self.headers.get('Content-Type', '')
        return value.split(';')[0].strip().lower()

    def json(self):
        return jsonlib.loads(self.body)

    def __repr__(self):
        text = self.text
        if len(text) > 600:
            text = text[:600] + '...'
        return '<%s %s on %s: %d %s>' % (self.method, self.path, self.host,
                                         self.status, text)


class _Connection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1:port with a chosen SNI name."""

    def __init__(self, port, server_name, context, timeout):
        super().__init__('127.0.0.1', port, context=context,
                         timeout=timeout)
        self._server_name = server_name

    def connect(self):
        sock = socket.create_connection(('127.0.0.1', self.port),
                                        self.timeout)
        self.sock = self._context.wrap_socket(
            sock, server_hostname=self._server_name)


def _cgi_response(method, path, host, output):
    """A Response from a CGI response (Status: line, headers, body)."""
    head, sep, body = output.partition(b'\r\n\r\n')
    msg = email.message.Message()
    status, reason = 0, ''
    if sep:
        for line in head.decode('latin-1').split('\r\n'):
            key, _, value = line.partition(':')
            if key.lower() == 'status':
                code, _, reason = value.strip().partition(' ')
                status = int(code)
            else:
                msg[key] = value.strip()
    return Response(method, path, host, status, reason, msg, body)



def _tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# ---------------------------------------------------------------------
# FastCGI, straight to crewd's socket (what nginx would send, or not).
# ---------------------------------------------------------------------

FCGI_BEGIN_REQUEST = 1
FCGI_ABORT_REQUEST = 2
FCGI_END_REQUEST = 3
FCGI_PARAMS = 4
FCGI_STDIN = 5
FCGI_STDOUT = 6
FCGI_GET_VALUES = 9
FCGI_GET_VALUES_RESULT = 10
FCGI_UNKNOWN_TYPE = 11


def fcgi_record(rtype, request_id, content=b'', padding=0, version=1):
    """One record; nothing is checked, so it can be as wrong as asked."""
    return struct.pack('>BBHHBB', version, rtype, request_id, len(content),
                       padding, 0) + content + b'\0' * padding


def fcgi_begin(request_id=1, role=1, flags=0):
    return fcgi_record(FCGI_BEGIN_REQUEST, request_id,
                       struct.pack('>HB5x', role, flags))


def fcgi_pairs(params):
    """Name-value pairs (a dict or a list of pairs, str or bytes)."""
    def length(n):
        return bytes([n]) if n < 128 else struct.pack('>I', n | 1 << 31)
    out = b''
    for name, value in (params.items() if isinstance(params, dict)
                        else params):
        name = name.encode() if isinstance(name, str) else name
        value = value.encode() if isinstance(value, str) else value
        out += length(len(name)) + length(len(value)) + name + value
    return out


def fcgi_stream(rtype, data, request_id=1):
    """data as records of at most 65535 bytes, then the empty record."""
    return b''.join(fcgi_record(rtype, request_id, data[i:i + 65535])
                    for i in range(0, len(data), 65535)) + \
        fcgi_record(rtype, request_id)


def fcgi_records(data):
    """The records in data as (type, request id, content) tuples."""
    records = []
    while len(data) >= 8:
        _, rtype, rid, length, padding, _ = struct.unpack('>BBHHBB',
                                                           data[:8])
        records.append((rtype, rid, data[8:8 + length]))
        data = data[8 + length + padding:]
    return records


# ---------------------------------------------------------------------
# The stack.
# ---------------------------------------------------------------------

class Stack:
    """PostgreSQL, crewd and nginx for one test module.

    workers: crewd's prefork workers.  conf: crewd configuration keys
    that replace the test defaults (e.g. signup_enabled=False).  mongo:
    start the local MongoDB-protocol server (unless conf names a
    mongodb_uri); False leaves MongoDB unconfigured.  login_rate and
    login_burst: nginx's login limit per client (by default too high to
    matter).  crewd_stderr: where crewd's log goes instead of crewd.log
    (e.g. /dev/full).
    """

    def __init__(self, workers=2, name='crewd', mongo=True,
                 login_rate='6000r/m', login_burst=1000, crewd_stderr=None,
                 **conf):
        self.tools = find_tools()
        self.name = name
        self.root = os.geteuid() == 0
        self.dir = None
        self.crewd = None
        self.nginx = None
        self.mongo = None
        self.mongo_port = None
        self.use_mongo = mongo and 'mongodb_uri' not in conf
        self.pg_running = False
        self.closed = False
        self.workers = workers
        self.login_rate = login_rate
        self.login_burst = login_burst
        self.crewd_stderr = crewd_stderr
        self.conf_overrides = conf
        self.conf = {}
        self._tls = _tls_context()

    # -- context manager ----------------------------------------------

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and not issubclass(exc_type,
                                                   KeyboardInterrupt):
            print(self.diagnostics(), flush=True)
        self.close()
        return False

    # -- start ---------------------------------------------------------

    def start(self):
        atexit.register(self.close)
        sanitizer_options()
        self.dir = tempfile.mkdtemp(prefix='crewd-test-', dir='/tmp')
        os.chmod(self.dir, 0o755)
        self.pg_dir = os.path.join(self.dir, 'pg')
        self.pg_data = os.path.join(self.pg_dir, 'data')
        self.pg_log = os.path.join(self.pg_dir, 'postgresql.log')
        self.pg_sock = os.path.join(self.dir, 'pgsock')
        self.run_dir = os.path.join(self.dir, 'run')
        self.conf_path = os.path.join(self.dir, 'crewd.conf')
        self.crewd_log_path = os.path.join(self.dir, 'crewd.log')
        self.nginx_prefix = os.path.join(self.dir, 'nginx')
        self.nginx_conf = os.path.join(self.nginx_prefix, 'crewd.conf')
        self.nginx_log_dir = os.path.join(self.nginx_prefix, 'logs')
        self.nginx_out_path = os.path.join(self.nginx_log_dir, 'stderr.log')
        self.mongo_log_path = os.path.join(self.dir, 'mongo-server.log')
        self.cert = os.path.join(self.dir, 'tls', 'cert.pem')
        self.key = os.path.join(self.dir, 'tls', 'key.pem')
        for d in (self.pg_dir, self.pg_sock, self.run_dir,
                  os.path.dirname(self.cert), self.nginx_log_dir):
            os.makedirs(d, mode=0o755)
        # PostgreSQL's socket (trust authentication: whoever reaches it is
        # a superuser) is for the user it runs as, and root, alone.
        os.chmod(self.pg_dir, 0o700)
        os.chmod(self.pg_sock, 0o700)
        if self.root:
            pg = pwd.getpwnam('postgres')
            for d in (self.pg_dir, self.pg_sock):
                os.chown(d, pg.pw_uid, pg.pw_gid)
        # crewd's socket: only crewd's user and nginx's workers may enter
        # its folder.  As root, the folder is root:GROUP 2750, so that the
        # socket crewd makes in it belongs to GROUP and its mode 0660 lets
        # the workers (GROUP) in; as another user the workers run as that
        # user and 0700 will do.
        self.nginx_user = None
        if self.root:
            self.nginx_user = nginx_worker_user()
            os.chown(self.run_dir, 0,
                     grp.getgrnam(self.nginx_user[1]).gr_gid)
            os.chmod(self.run_dir, 0o2750)
        else:
            os.chmod(self.run_dir, 0o700)

        self.pg_port = free_port()
        self.https_port = free_port()
        self.http_port = free_port()
        self.metrics_port = free_port()

        self._start_postgres_cluster()
        if self.use_mongo:
            self._start_mongo_on_a_free_port()
        self._write_crewd_conf()
        self.crewctl('secret', 'create')
        self.crewctl('db', 'migrate')
        self.crewctl('keys', 'create')
        self.start_crewd()
        self._make_certificate()
        self._start_nginx()
        return self

    def _pg(self, *args, check=True, timeout=60):
        """Runs a PostgreSQL program as the cluster's owner."""
        cmd = list(args)
        if self.root:
            cmd = ['runuser', '-u', 'postgres', '--'] + cmd
        proc = subprocess.run(cmd, cwd=self.dir, capture_output=True,
                              text=True, timeout=timeout,
                              env=dict(os.environ, LC_ALL='C'))
        if check and proc.returncode != 0:
            raise StackError('%s failed (%d): %s%s' % (
                ' '.join(args), proc.returncode, proc.stdout, proc.stderr))
        return proc

    def _pg_options(self):
        return ("-p %d -k %s -c listen_addresses='' "
                "-c unix_socket_permissions=0700 -c fsync=off "
                "-c full_page_writes=off" % (self.pg_port, self.pg_sock))

    def _start_postgres_cluster(self):
        self._pg(self.tools['initdb'], '-D', self.pg_data, '-U', 'postgres',
                 '-A', 'trust', '-E', 'UTF8', '--no-locale', '--no-sync')
        self.start_postgres()
        self.psql_file(os.path.join(SRCDIR, 'sql', 'bootstrap.sql'))

    def _write_crewd_conf(self):
        conf = {
            'listen': os.path.join(self.run_dir, 'crewd.sock'),
            # For nginx's workers: the group of the folder, or crewd's
            # own user.  The folder keeps everybody else out.
            'listen_mode': '0660',
            'workers': str(self.workers),
            'shutdown_timeout': '10',
            'database_url': 'host=%s port=%d dbname=crewd user=crewd' % (
                self.pg_sock, self.pg_port),
            'owner_database_url': ('host=%s port=%d dbname=crewd '
                                   'user=crewd_owner' % (self.pg_sock,
                                                         self.pg_port)),
            'base_domain': BASE_DOMAIN,
            'token_secret_file': os.path.join(self.dir, 'token.key'),
            'master_key_file': os.path.join(self.dir, 'master.key'),
            'signup_enabled': 'true',
            'mongodb_uri': ('mongodb://127.0.0.1:%d/crewd' % self.mongo_port
                            if self.use_mongo else ''),
            # Tenants signed up during a MongoDB outage are retried often.
            'mongodb_provision_interval': '1',
            'password_ops_limit': '1',
            'password_mem_limit': '8192',
            'log_level': 'info',
            'pid_file': os.path.join(self.run_dir, 'crewd.pid'),
            'access_log': os.path.join(self.dir, 'access.log'),
        }
        for key, value in self.conf_overrides.items():
            if isinstance(value, bool):
                value = 'true' if value else 'false'
            conf[key] = str(value)
        self.conf = conf
        with open(self.conf_path, 'w') as f:
            f.write('# written by tests/integration/stack.py\n')
            for key, value in conf.items():
                f.write('%s = "%s"\n' % (key, value))

    def _make_certificate(self):
        subprocess.run(
            [self.tools['openssl'], 'req', '-x509', '-newkey', 'ec',
             '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
             '-keyout', self.key, '-out', self.cert, '-days', '2',
             '-subj', '/CN=localhost',
             '-addext', 'subjectAltName=DNS:localhost,DNS:*.localhost'],
            check=True, capture_output=True)

    def _start_nginx(self):
        # A port found free can be taken by someone else before nginx
        # binds it: then try again with other ports.
        for attempt in range(3):
            if attempt > 0:
                self.https_port = free_port()
                self.http_port = free_port()
                self.metrics_port = free_port()
            self._render_nginx_conf()
            if self._run_nginx():
                return
        raise StackError('nginx could not bind its ports:\n' +
                         self.nginx_log())

    def _render_nginx_conf(self):
        render = self.tools['render']
        cmd = [render] if os.access(render, os.X_OK) else ['sh', render]
        cmd += ['--template', self.tools['template'],
                '--out', self.nginx_conf,
                '--base-domain', BASE_DOMAIN,
                '--https-port', str(self.https_port),
                '--http-port', str(self.http_port),
                '--metrics-port', str(self.metrics_port),
                '--socket', self.conf['listen'],
                '--cert', self.cert, '--key', self.key,
                '--prefix', self.nginx_prefix,
                '--listen-addr', '127.0.0.1',
                '--login-rate', self.login_rate,
                '--login-burst', str(self.login_burst),
                # The suite signs hundreds of tenants up in a few minutes.
                '--signup-rate', '6000r/m', '--signup-burst', '1000',
                '--params', self.tools['params']]
        if self.nginx_user:
            cmd += ['--user', '%s:%s' % self.nginx_user]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise StackError('render-conf failed (%d): %s%s' % (
                proc.returncode, proc.stdout, proc.stderr))

    def _run_nginx(self):
        """Starts nginx and waits until /healthz answers through it.
        Returns False when it could not bind its ports."""
        for path in glob.glob(os.path.join(self.nginx_log_dir, '*.log')):
            os.remove(path)
        with open(self.nginx_out_path, 'ab') as out:
            self.nginx = subprocess.Popen(
                [self.tools['nginx'], '-p', self.nginx_prefix + '/',
                 '-c', self.nginx_conf,
                 '-e', os.path.join(self.nginx_log_dir, 'error.log'),
                 '-g', 'daemon off;'],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                start_new_session=True, preexec_fn=_die_with_parent)

        def ready():
            if self.nginx.poll() is not None:
                return 'exited'
            try:
                return self.request('GET', '/healthz', timeout=2).status \
                    == 200
            except OSError:
                return False

        state = wait_for(ready, 20, 0.1)
        if state is True:
            return True
        if state == 'exited':
            if 'Address already in use' in self.nginx_log():
                return False
            raise StackError('nginx exited with %d:\n%s' % (
                self.nginx.returncode, self.nginx_log()))
        raise StackError('nginx did not answer /healthz with 200:\n' +
                         self.nginx_log())

    # -- PostgreSQL ----------------------------------------------------

    def start_postgres(self):
        self._pg(self.tools['pg_ctl'], '-D', self.pg_data, '-l', self.pg_log,
                 '-w', '-t', '60', '-o', self._pg_options(), 'start')
        self.pg_running = True

    def stop_postgres(self, mode='fast'):
        self._pg(self.tools['pg_ctl'], '-D', self.pg_data, '-w', '-t', '60',
                 '-m', mode, 'stop')
        self.pg_running = False

    def restart_postgres(self, mode='fast'):
        self._pg(self.tools['pg_ctl'], '-D', self.pg_data, '-l', self.pg_log,
                 '-w', '-t', '60', '-m', mode, '-o', self._pg_options(),
                 'restart')
        self.pg_running = True

    def psql_file(self, path):
        """Runs an SQL file as the superuser (sql/bootstrap.sql)."""
        cmd = [self.tools['psql'], '-X', '-q', '-v', 'ON_ERROR_STOP=1',
               '-h', self.pg_sock, '-p', str(self.pg_port),
               '-U', 'postgres', '-d', 'postgres', '-f', path]
        proc = subprocess.run(cmd, capture_output=True, timeout=60)
        if proc.returncode != 0:
            raise StackError('psql -f %s failed: %s' % (
                path, proc.stderr.decode('utf-8', 'replace')))

    def psql(self, sql, superuser=False, database='crewd', as_role=None,
             **variables):
        """Runs sql (one statement) as the owner role crewctl uses (it
        sees every schema and every row), as another role, or as the
        superuser, and returns its rows as tuples of strings, None for
        SQL NULL.  Variables are passed with -v and quoted in the SQL as
        :'name'."""
        user = 'postgres' if superuser else as_role or 'crewd_owner'
        cmd = [self.tools['psql'], '-X', '-q', '-A', '-t',
               '-F', '\x1f', '-R', '\x1e',
               '-v', 'ON_ERROR_STOP=1', '-P', 'null=\\N',
               '-h', self.pg_sock, '-p', str(self.pg_port),
               '-U', user, '-d', database]
        for name, value in variables.items():
            cmd += ['-v', '%s=%s' % (name, value)]
        proc = subprocess.run(cmd, input=sql.encode(), capture_output=True,
                              timeout=60)
        if proc.returncode != 0:
            raise StackError('psql failed: %s\n%s' % (
                sql, proc.stderr.decode('utf-8', 'replace')))
        out = proc.stdout.decode()
        if out.endswith('\n'):
            out = out[:-1]
        rows = []
        for record in out.split('\x1e') if out else []:
            rows.append(tuple(None if v == '\\N' else v
                              for v in record.split('\x1f')))
        return rows

    def psql_value(self, sql, superuser=False, as_role=None, **variables):
        rows = self.psql(sql, superuser=superuser, as_role=as_role,
                         **variables)
        if len(rows) != 1 or len(rows[0]) != 1:
            raise StackError('expected one value from %s, got %r' % (
                sql, rows))
        return rows[0][0]

    # -- MongoDB -------------------------------------------------------

    def _mongo_server_dir(self):
        """Installs the server once (later calls find it cached) and
        returns its folder."""
        install = self.tools['mongo_install']
        proc = subprocess.run(['sh', install, mongo_server_cache()],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise StackError('%s failed (%d): %s%s' % (
                install, proc.returncode, proc.stdout, proc.stderr))
        return proc.stdout.strip().splitlines()[-1]

    def start_mongo(self):
        """Starts the MongoDB-protocol server on self.mongo_port (empty:
        its data does not outlive it) and waits until it accepts."""
        server_dir = self._mongo_server_dir()
        with open(self.mongo_log_path, 'ab') as log:
            self.mongo = subprocess.Popen(
                [self.tools['node'], self.tools['mongo_server'],
                 '--dir', server_dir, '--port', str(self.mongo_port)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True, preexec_fn=_die_with_parent)

        def ready():
            if self.mongo.poll() is not None:
                raise StackError('the MongoDB-protocol server exited with '
                                 '%d:\n%s' % (self.mongo.returncode,
                                              _tail(self.mongo_log_path)))
            try:
                with socket.create_connection(('127.0.0.1', self.mongo_port),
                                              timeout=1):
                    return True
            except OSError:
                return False

        if not wait_for(ready, 30, 0.1):
            raise StackError('the MongoDB-protocol server did not start:\n'
                             + _tail(self.mongo_log_path))

    def _start_mongo_on_a_free_port(self):
        # A port found free can be taken by someone else before the
        # server binds it: then try again with another.
        for attempt in range(3):
            self.mongo_port = free_port()
            try:
                self.start_mongo()
                return
            except StackError:
                if attempt == 2 or 'could not listen' not in _tail(
                        self.mongo_log_path):
                    raise

    def stop_mongo(self):
        """Stops the MongoDB-protocol server (an outage)."""
        if self.mongo is None:
            return
        if self.mongo.poll() is None:
            self.mongo.send_signal(signal.SIGTERM)
            try:
                self.mongo.wait(10)
            except subprocess.TimeoutExpired:
                self.mongo.kill()
                self.mongo.wait()
        self.mongo = None

    def mongo_inspect(self, slug):
        """What "crewctl mongo inspect" says of a tenant's collections."""
        return jsonlib.loads(self.crewctl('mongo', 'inspect', '--tenant',
                                          slug).stdout)

    # -- crewd ---------------------------------------------------------

    def crewctl(self, *args, check=True, input=None):
        proc = subprocess.run(
            [self.tools['crewctl'], '-c', self.conf_path] + list(args),
            capture_output=True, text=True, input=input, timeout=120)
        report = sanitizer_findings(('crewctl %s' % ' '.join(args),
                                     proc.stderr + proc.stdout))
        if report:
            raise SanitizerReport('crewctl %s: sanitizer report:\n%s' % (
                ' '.join(args), report))
        if check and proc.returncode != 0:
            raise StackError('crewctl %s failed (%d): %s%s' % (
                ' '.join(args), proc.returncode, proc.stdout, proc.stderr))
        return proc

    def start_crewd(self):
        listen = self.conf['listen']
        with open(self.crewd_stderr or self.crewd_log_path, 'ab') as log:
            self.crewd = subprocess.Popen(
                [self.tools['crewd'], '-c', self.conf_path],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True, preexec_fn=_die_with_parent)

        def ready():
            if self.crewd.poll() is not None:
                raise StackError('crewd exited with %d:\n%s' % (
                    self.crewd.returncode, _tail(self.crewd_log_path)))
            if not os.path.exists(listen):
                return False
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                try:
                    s.connect(listen)
                except OSError:
                    return False
            return len(self.crewd_pids()[1]) == self.workers

        if not wait_for(ready, 20):
            raise StackError('crewd did not start:\n' +
                             _tail(self.crewd_log_path))

    def _crewd_master(self):
        try:
            with open(self.conf['pid_file']) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            pass
        return self.crewd.pid if self.crewd is not None else None

    def crewd_pids(self):
        """(master pid, sorted list of worker pids); the audit shipper
        and the tenant watch, also children of the master, are not
        workers."""
        master = self._crewd_master()
        children = children_of(master) if master else []
        return master, [pid for pid in children
                        if process_name(pid) not in (SHIPPER_NAME,
                                                     WATCH_NAME)]

    def metric(self, name):
        """The value of an unlabelled series of crewd's /metrics."""
        conn = http.client.HTTPConnection('127.0.0.1', self.metrics_port,
                                          timeout=30)
        try:
            conn.request('GET', '/metrics')
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        return float(re.search(r'^%s (\S+)$' % re.escape(name), text,
                               re.M).group(1))

    def watch_pids(self):
        """Sorted pids of the master's tenant watches (one, or two for a
        moment during a reload)."""
        master = self._crewd_master()
        return [pid for pid in (children_of(master) if master else [])
                if process_name(pid) == WATCH_NAME]

    def shipper_pids(self):
        """Sorted pids of the master's audit shippers (one, or two for a
        moment during a reload; none with audit_shipper = false)."""
        master = self._crewd_master()
        return [pid for pid in (children_of(master) if master else [])
                if process_name(pid) == SHIPPER_NAME]

    def rewrite_crewd_conf(self, **changes):
        """Rewrites crewd's configuration file with these keys set (None
        takes back a key set before); crewd reads it at the next
        reload_crewd()."""
        for key, value in changes.items():
            if key == 'workers':
                self.workers = int(value)
            elif value is None:
                self.conf_overrides.pop(key, None)
            else:
                self.conf_overrides[key] = value
        self._write_crewd_conf()

    def reload_crewd(self):
        os.kill(self.crewd_pids()[0], signal.SIGHUP)

    def stop_crewd(self, timeout=None):
        """SIGTERM to the master; returns its exit status (None if it
        had to be killed)."""
        if self.crewd is None:
            return None
        if timeout is None:
            timeout = int(self.conf.get('shutdown_timeout', 30)) + 5
        workers = self.crewd_pids()[1] + self.shipper_pids()
        status = None
        if self.crewd.poll() is None:
            self.crewd.send_signal(signal.SIGTERM)
        try:
            status = self.crewd.wait(timeout)
        except subprocess.TimeoutExpired:
            self.crewd.kill()
            self.crewd.wait()
        for pid in workers:
            if pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        return status

    def crewd_log(self):
        try:
            with open(self.crewd_log_path, encoding='utf-8',
                      errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def nginx_log(self):
        parts = []
        for path in sorted(glob.glob(os.path.join(self.nginx_log_dir,
                                                  '*.log'))):
            parts.append('== %s\n%s' % (path, _tail(path)))
        return '\n'.join(parts)

    def diagnostics(self, lines=40):
        if self.dir is None:
            return ''
        out = ['---- %s: tail of crewd.log' % self.name,
               _tail(self.crewd_log_path, lines)]
        for path in sorted(glob.glob(os.path.join(self.nginx_log_dir,
                                                  '*.log'))):
            out += ['---- %s: tail of %s' % (self.name,
                                             os.path.basename(path)),
                    _tail(path, lines)]
        out += ['---- %s: tail of postgresql.log' % self.name,
                _tail(self.pg_log, lines // 2)]
        if self.use_mongo:
            out += ['---- %s: tail of mongo-server.log' % self.name,
                    _tail(self.mongo_log_path, lines // 4)]
        return '\n'.join(out)

    # -- HTTP ----------------------------------------------------------

    def host_name(self, host=None):
        """None: the apex; a slug: its tenant host; a name with a dot:
        itself."""
        if host is None:
            return BASE_DOMAIN
        if '.' in host:
            return host
        return '%s.%s' % (host, BASE_DOMAIN)

    def request(self, method, path, host=None, token=None, json=None,
                body=None, headers=None, timeout=30):
        name = self.host_name(host)
        hdrs = {'Host': '%s:%d' % (name, self.https_port)}
        if json is not None:
            body = jsonlib.dumps(json)
            hdrs['Content-Type'] = 'application/json'
        if isinstance(body, str):
            body = body.encode('utf-8')
        if token is not None:
            hdrs['Authorization'] = 'Bearer ' + token
        hdrs.update(headers or {})
        conn = _Connection(self.https_port, name, self._tls, timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            msg = email.message.Message()
            for key, value in resp.getheaders():
                msg[key] = value
            return Response(method, path, name, resp.status, resp.reason,
                            msg, data)
        finally:
            conn.close()

    def signup(self, slug, name=None, email=None, password=DEFAULT_PASSWORD):
        return self.request('POST', '/api/v1/tenants', json={
            'name': name or 'Tenant %s' % slug,
            'slug': slug,
            'admin_email': email or 'admin@%s.test' % slug,
            'admin_password': password,
        })

    def login(self, slug, email=None, password=DEFAULT_PASSWORD):
        resp = self.request('POST', '/api/v1/auth/login', host=slug, json={
            'email': email or 'admin@%s.test' % slug,
            'password': password,
        })
        if resp.status != 200:
            raise StackError('login to %s failed: %r' % (slug, resp))
        return resp.json()['access_token']

    def new_tenant(self, prefix='t'):
        """Signs a fresh tenant up and logs its admin in."""
        slug = '%s-%s' % (prefix, os.urandom(4).hex())
        resp = self.signup(slug)
        if resp.status != 201:
            raise StackError('sign-up of %s failed: %r' % (slug, resp))
        body = resp.json()
        return Tenant(slug=slug, id=body['id'],
                      email='admin@%s.test' % slug,
                      password=DEFAULT_PASSWORD, token=self.login(slug))

    def tenant_schema(self, tenant_id):
        return self.psql_value(
            "SELECT db_schema FROM public.tenants WHERE id = :'id'",
            id=tenant_id)

    def tenant_state(self, tenant_id):
        """What a request of the tenant could change, as one comparable
        value: a digest of its agents and users, the number of rows of
        its other tables, and the number of tenants.  Read as the
        superuser, whom no grant or row-level policy limits."""
        tables = ('llm_providers', 'crews', 'crew_agents', 'flows',
                  'executions', 'tools')
        return self.psql(
            "SELECT (SELECT md5(coalesce(string_agg(a::text, ','"
            " ORDER BY a.id), '')) FROM :\"schema\".agents a),"
            " (SELECT md5(coalesce(string_agg(u::text, ',' ORDER BY u.id),"
            " '')) FROM public.users u WHERE u.tenant_id = :'id'), " +
            ' + '.join('(SELECT count(*) FROM :"schema".%s)' % t
                       for t in tables) +
            ", (SELECT count(*) FROM public.tenants)", superuser=True,
            schema=self.tenant_schema(tenant_id), id=tenant_id)

    # -- FastCGI straight to crewd ------------------------------------

    def fcgi_send(self, data, timeout=10, close_write=True):
        """Connects to crewd's socket, sends data and returns every byte
        crewd sends back until it closes the connection (socket.timeout
        if it does not within timeout seconds)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.conf['listen'])
            try:
                s.sendall(data)
                if close_write:
                    s.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass    # crewd closed first; what it sent is still read
            out = b''
            while True:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    return out
                out += chunk
            return out

    def fcgi_params(self, method, path, host=None, token=None, body=b'',
                    content_type='application/json'):
        """The parameters nginx would send for this request."""
        path, _, query = path.partition('?')
        params = {
            'REQUEST_METHOD': method, 'DOCUMENT_URI': path,
            'REQUEST_URI': path + ('?' + query if query else ''),
            'QUERY_STRING': query, 'CONTENT_TYPE': content_type if body
            else '', 'CONTENT_LENGTH': str(len(body)) if body else '',
            'SERVER_PROTOCOL': 'HTTP/1.1', 'REMOTE_ADDR': '127.0.0.1',
            'SERVER_PORT': str(self.https_port),
            'REQUEST_ID': os.urandom(16).hex(),
            'TENANT_SLUG': '' if host is None else host,
        }
        if token is not None:
            params['HTTP_AUTHORIZATION'] = 'Bearer ' + token
        return params

    def fcgi_request(self, method, path, host=None, token=None, json=None,
                     body=b'', params=None, stdin=None, timeout=10):
        """A request sent to crewd as nginx would, with params changed
        (None removes one) and stdin (the body's records) replaced if
        given.  Returns the response (status 0 when crewd closed the
        connection without one) and the raw bytes."""
        if json is not None:
            body = jsonlib.dumps(json).encode()
        all_params = self.fcgi_params(method, path, host, token, body)
        for name, value in (params or {}).items():
            if value is None:
                all_params.pop(name, None)
            else:
                all_params[name] = value
        data = fcgi_begin() + fcgi_stream(FCGI_PARAMS,
                                          fcgi_pairs(all_params))
        data += fcgi_stream(FCGI_STDIN, body) if stdin is None else stdin
        raw = self.fcgi_send(data, timeout)
        return _cgi_response(method, path, host,
                             b''.join(content for rtype, _, content
                                      in fcgi_records(raw)
                                      if rtype == FCGI_STDOUT)), raw

    # -- stop ----------------------------------------------------------

    def close(self):
        if self.closed:
            return
        self.closed = True
        errors = []

        if self.nginx is not None and self.nginx.poll() is None:
            try:
                self.nginx.send_signal(signal.SIGQUIT)
                self.nginx.wait(10)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
                self.nginx.wait()
            except OSError as e:
                errors.append('nginx: %s' % e)

        try:
            self.stop_crewd(timeout=15)
        except OSError as e:
            errors.append('crewd: %s' % e)

        try:
            self.stop_mongo()
        except OSError as e:
            errors.append('mongo-server: %s' % e)

        if self.pg_running:
            try:
                self.stop_postgres(mode='immediate')
            except (StackError, subprocess.TimeoutExpired) as e:
                errors.append('postgres: %s' % e)

        # Every crewd process has exited (LeakSanitizer has looked at
        # each): any report fails the module.
        report = sanitizer_findings(
            *([('crewd.log', self.crewd_log())] if self.dir else []))

        if self.dir is not None:
            if os.environ.get('CREWD_TEST_KEEP') == '1':
                print('%s: kept %s' % (self.name, self.dir), flush=True)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
        if errors:
            print('%s: while stopping: %s' % (self.name, '; '.join(errors)),
                  flush=True)
        if report:
            print('%s: SANITIZER REPORT\n%s' % (self.name, report),
                  flush=True)
            raise SanitizerReport('%s: crewd or crewctl made a sanitizer '
                                  'report (shown above)' % self.name)


class Tenant:
    def __init__(self, slug, id, email, password, token):
        self.slug = slug
        self.id = id
        self.email = email
        self.password = password
        self.token = token

    def __repr__(self):
        return '<Tenant %s %s>' % (self.slug, self.id)
